/**
 * The built-in scheduler: no separate component to configure. Each tick checks out
 * the connections whose `next_refresh_at` is due, soonest first, from an index: no
 * table scan. Checking out moves the row's next refresh a minute ahead, so the
 * schedulers of a cluster take disjoint rows, and a process that dies mid-way leaves
 * its rows to the others a minute later. The broker then writes the real next refresh
 * time (with its jitter).
 *
 * Its pace follows the token endpoints: a renewal waits on the network, not on this
 * process, so as many run at once as come due (Little's law: rate x latency), up to
 * `concurrency` overall; the broker bounds them per token endpoint host as well. A
 * fixed pool would cap the pace at pool / latency: 8 renewals against a 200 ms
 * endpoint is 40 a second, while 5,000 tokens issued together come due together.
 */
import type { Clock } from "../core/clock.js";
import type { DueConnection, TokenStateStore } from "../store/store.js";

export interface SchedulerOptions {
  /** How often to look for due work when idle (ms). */
  tickMs?: number;
  /** The most renewals this process's scheduler runs at once (a bound, not a pool). */
  concurrency?: number;
  /** Rows checked out per query. */
  batchSize?: number;
  /** How long a checked-out row stays hidden from other schedulers (ms). */
  checkoutMs?: number;
  /** Longest wait between ticks while the store fails (ms). */
  maxBackoffMs?: number;
  /** Told of each tick that failed (the database is away), with how many in a row. */
  onTickFailed?: (error: unknown, failuresInRow: number) => void;
}

/** Renews one checked-out connection (its row comes along: token-source.ts). */
export type RenewDue = (due: DueConnection) => Promise<void>;

export class Scheduler {
  readonly #store: TokenStateStore;
  readonly #clock: Clock;
  readonly #renew: RenewDue;
  readonly #tickMs: number;
  readonly #concurrency: number;
  readonly #batchSize: number;
  readonly #checkoutMs: number;
  readonly #maxBackoffMs: number;
  readonly #onTickFailed: SchedulerOptions["onTickFailed"];
  readonly #running = new Map<string, Promise<void>>();
  /** Settles when the next renewal ends, for the ticks waiting for room. */
  #freed: { promise: Promise<void>; wake: () => void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;
  #ticking: Promise<void> | undefined;
  /** Ticks failed in a row (the database is away): the wait before the next one grows. */
  #failures = 0;
  /** How late the last due connection was picked up (ms): the scheduler's lag. */
  lastLagMs = 0;
  /** The most renewals it has had in flight at once (for metrics and benchmarks). */
  peakInFlight = 0;

  constructor(
    store: TokenStateStore,
    clock: Clock,
    renew: RenewDue,
    options: SchedulerOptions = {},
  ) {
    this.#store = store;
    this.#clock = clock;
    this.#renew = renew;
    this.#tickMs = options.tickMs ?? 250;
    this.#concurrency = options.concurrency ?? 512;
    this.#batchSize = options.batchSize ?? 200;
    this.#checkoutMs = options.checkoutMs ?? 60_000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 2_000;
    this.#onTickFailed = options.onTickFailed;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule(0);
  }

  /** Stops picking new work and waits for the refreshes already running. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#ticking;
    await Promise.allSettled([...this.#running.values()]);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#ticking = this.tick().then(
        (more) => {
          this.#failures = 0;
          this.#schedule(more ? 0 : this.#tickMs);
        },
        (error: unknown) => {
          // The store failed (the database is away): back off, doubling up to the
          // cap, so an outage costs a few queries a second at most; the first tick
          // that works brings the usual pace back.
          this.#failures += 1;
          this.#onTickFailed?.(error, this.#failures);
          this.#schedule(this.backoffMs());
        },
      );
    }, delayMs);
    this.#timer.unref();
  }

  /** Renewals running now. */
  get inFlight(): number {
    return this.#running.size;
  }

  /** The wait before the next tick after the current run of failures (ms). */
  backoffMs(): number {
    const grown = Math.min(this.#tickMs * 2 ** this.#failures, this.#maxBackoffMs);
    return Math.max(this.#tickMs, grown);
  }

  /** One pass; resolves `true` when there may be more due work right away. */
  async tick(): Promise<boolean> {
    const free = this.#concurrency - this.#running.size;
    if (free <= 0) {
      // Not Promise.race over the running renewals: that attaches a reaction to each
      // of them, hundreds per tick, kept until each ends.
      if (this.#freed === undefined) {
        let wake = () => {};
        const promise = new Promise<void>((resolve) => {
          wake = resolve;
        });
        this.#freed = { promise, wake };
      }
      await this.#freed.promise;
      return true;
    }
    const now = this.#clock.now();
    const due = await this.#store.claimDueConnections(
      now,
      Math.min(free, this.#batchSize),
      now + this.#checkoutMs,
    );
    for (const one of due) {
      const { id, nextRefreshAt } = one;
      this.lastLagMs = Math.max(0, now - nextRefreshAt);
      const run = this.#renew(one)
        .catch(() => undefined) // the broker records every outcome as an event
        .finally(() => {
          this.#running.delete(id);
          const freed = this.#freed;
          this.#freed = undefined;
          freed?.wake();
        });
      this.#running.set(id, run);
    }
    this.peakInFlight = Math.max(this.peakInFlight, this.#running.size);
    return due.length > 0 && due.length === Math.min(free, this.#batchSize);
  }
}
