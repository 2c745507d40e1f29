/**
 * Per-connection rate limits (`rateLimit: { requests, perSeconds, maxWaitMs }`),
 * counted in the store so every process of a cluster shares one budget: fixed windows
 * of `perSeconds`, at most `requests` calls in each. A call over the limit waits for
 * the next window if that is within `maxWaitMs`, else fails `rate_limited` (429) with
 * `Retry-After`. An API's own 429 with `Retry-After` holds the connection's further
 * calls until then: in this process always, and across the cluster when the connection
 * has a `rateLimit` (only those pay a database read per call).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Clock } from "../core/clock.js";
import { TokenwardenError } from "../core/errors.js";
import type { Integration } from "../core/integration.js";
import { parseRetryAfter } from "../oauth/token-response.js";
import type { RateLimitStore } from "../store/store.js";

type RateLimit = NonNullable<Integration["rateLimit"]>;

/** An API's Retry-After is believed up to this long; a larger one is a mistake or hostile. */
const MAX_HOLD_MS = 3600_000;

export class RateLimits {
  readonly #store: RateLimitStore;
  readonly #clock: Clock;
  /** Holds from an API's Retry-After seen by this process, by connection. */
  readonly #held = new Map<string, number>();

  constructor(store: RateLimitStore, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /**
   * Settles when the call may go; fails `rate_limited` when it may not within
   * `maxWaitMs`. Without a limit or a hold there is nothing to wait for: no promise.
   */
  acquire(id: string, limit: RateLimit | undefined): Promise<void> | undefined {
    if (limit === undefined && !this.#held.has(id)) return undefined;
    return this.#acquire(id, limit);
  }

  async #acquire(id: string, limit: RateLimit | undefined): Promise<void> {
    const maxWaitMs = limit?.maxWaitMs ?? 0;
    let waited = 0;
    for (;;) {
      const now = this.#clock.now();
      let retryAt = this.#held.get(id) ?? 0;
      if (retryAt <= now) this.#held.delete(id);
      if (limit !== undefined && retryAt <= now) {
        retryAt = await this.#store.callsHeldUntil(id);
        if (retryAt <= now) {
          const windowMs = limit.perSeconds * 1000;
          const windowStart = now - (now % windowMs);
          if (await this.#store.takeRateSlot(id, windowStart, limit.requests)) return;
          retryAt = windowStart + windowMs;
        }
      }
      if (retryAt <= now) return;
      const waitMs = retryAt - now;
      if (waited + waitMs > maxWaitMs) {
        throw new TokenwardenError(
          "rate_limited",
          `connection ${id} is over its rate limit, or the API asked to wait; try again in ${Math.ceil(waitMs / 1000)} s`,
          { retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) },
        );
      }
      await sleep(waitMs);
      waited += waitMs;
    }
  }

  /** An API's answer: a 429 with `Retry-After` holds further calls until then. */
  async observe(
    id: string,
    limit: RateLimit | undefined,
    status: number,
    retryAfter: string | undefined,
  ): Promise<void> {
    if (status !== 429) return;
    const seconds = parseRetryAfter(retryAfter, this.#clock.now());
    if (seconds === undefined || seconds <= 0) return;
    const until = this.#clock.now() + Math.min(seconds * 1000, MAX_HOLD_MS);
    this.#held.set(id, Math.max(until, this.#held.get(id) ?? 0));
    if (limit !== undefined) await this.#store.holdCalls(id, until).catch(() => undefined);
  }
}
