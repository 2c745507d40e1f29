/**
 * At most so many renewals at once per token endpoint host, whatever starts them, so
 * that a storm of expiries (tokens issued together come due together) does not flood
 * one provider. Beyond the limit, renewals wait their turn in arrival order.
 */
export class HostLimit {
  readonly #limit: number;
  readonly #hosts = new Map<string, Slot>();

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError("limit must be at least 1");
    this.#limit = limit;
  }

  /** Renewals running now against `host` (for metrics and tests). */
  running(host: string): number {
    return this.#hosts.get(host)?.running ?? 0;
  }

  /**
   * Runs `work` in a slot of `host`. Promise chains rather than an async function: a
   * renewal holds its slot for a whole request, and thousands may be waiting at once.
   */
  run<T>(host: string, work: () => Promise<T>): Promise<T> {
    let slot = this.#hosts.get(host);
    if (slot === undefined) {
      slot = { running: 0, waiting: [] };
      this.#hosts.set(host, slot);
    }
    const held = slot;
    if (held.running < this.#limit) {
      held.running += 1;
      return this.#runIn(host, held, work);
    }
    return new Promise<void>((resolve) => held.waiting.push(resolve)).then(() =>
      this.#runIn(host, held, work),
    );
  }

  #runIn<T>(host: string, slot: Slot, work: () => Promise<T>): Promise<T> {
    let running: Promise<T>;
    try {
      running = work();
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.finally(() => {
      // Hand the slot straight to the next in line, or give it back.
      const next = slot.waiting.shift();
      if (next !== undefined) next();
      else {
        slot.running -= 1;
        if (slot.running === 0) this.#hosts.delete(host);
      }
    });
  }
}

interface Slot {
  running: number;
  waiting: Array<() => void>;
}

/** The host a token request goes to (`host:port`), for the per-host limit. */
export function tokenEndpointHost(tokenUrl: string): string {
  return URL.canParse(tokenUrl) ? new URL(tokenUrl).host : tokenUrl;
}
