/**
 * At most so many renewals at once per token endpoint host, whatever starts them, so
 * that a storm of expiries (tokens issued together come due together) does not flood
 * one provider. Beyond the limit, renewals wait their turn in arrival order.
 */
export class HostLimit {
  readonly #limit: number;
  readonly #hosts = new Map<string, { running: number; waiting: Array<() => void> }>();

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError("limit must be at least 1");
    this.#limit = limit;
  }

  /** Renewals running now against `host` (for metrics and tests). */
  running(host: string): number {
    return this.#hosts.get(host)?.running ?? 0;
  }

  async run<T>(host: string, work: () => Promise<T>): Promise<T> {
    let slot = this.#hosts.get(host);
    if (slot === undefined) {
      slot = { running: 0, waiting: [] };
      this.#hosts.set(host, slot);
    }
    if (slot.running >= this.#limit) {
      await new Promise<void>((resolve) => slot.waiting.push(resolve));
    } else {
      slot.running += 1;
    }
    try {
      return await work();
    } finally {
      // Hand the slot straight to the next in line, or give it back.
      const next = slot.waiting.shift();
      if (next !== undefined) next();
      else {
        slot.running -= 1;
        if (slot.running === 0) this.#hosts.delete(host);
      }
    }
  }
}

/** The host a token request goes to (`host:port`), for the per-host limit. */
export function tokenEndpointHost(tokenUrl: string): string {
  return URL.canParse(tokenUrl) ? new URL(tokenUrl).host : tokenUrl;
}
