import type { Clock } from "../core/clock.js";
import type { Store } from "../store/store.js";

/**
 * Built-in scheduler (seed 000 needed a separate Scheduler component; here it comes
 * with the broker). Each tick reads the connections whose `next_refresh_at` is due,
 * soonest first, from an index: no table scan. The jitter is already in
 * `next_refresh_at`, set when each token was written. Work runs with bounded
 * concurrency; in a cluster each process's scheduler reads the same rows and the
 * refresh lease decides who does each one.
 */
export interface SchedulerOptions {
  /** How often to look for due work when idle (ms). */
  tickMs?: number;
  /** Refreshes run at once by this process. */
  concurrency?: number;
  /** Rows read per query. */
  batchSize?: number;
}

export type RenewDue = (id: string) => Promise<void>;

export class Scheduler {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #renew: RenewDue;
  readonly #tickMs: number;
  readonly #concurrency: number;
  readonly #batchSize: number;
  readonly #running = new Map<string, Promise<void>>();
  /** Ids this process just handled: not picked again until the row changes or this expires. */
  readonly #cooldown = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;
  #ticking: Promise<void> | undefined;
  /** How late the last due connection was picked up (ms): the scheduler's lag. */
  lastLagMs = 0;

  constructor(store: Store, clock: Clock, renew: RenewDue, options: SchedulerOptions = {}) {
    this.#store = store;
    this.#clock = clock;
    this.#renew = renew;
    this.#tickMs = options.tickMs ?? 250;
    this.#concurrency = options.concurrency ?? 8;
    this.#batchSize = options.batchSize ?? 200;
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
        (more) => this.#schedule(more ? 0 : this.#tickMs),
        () => this.#schedule(this.#tickMs),
      );
    }, delayMs);
    this.#timer.unref();
  }

  /** One pass; resolves `true` when there may be more due work right away. */
  async tick(): Promise<boolean> {
    const now = this.#clock.now();
    for (const [id, until] of this.#cooldown) if (until <= now) this.#cooldown.delete(id);
    const free = this.#concurrency - this.#running.size;
    if (free <= 0) {
      await Promise.race(this.#running.values());
      return true;
    }
    const due = await this.#store.dueConnections(now, this.#batchSize);
    let started = 0;
    for (const { id, nextRefreshAt } of due) {
      if (this.#stopped || started >= free) break;
      if (this.#running.has(id) || this.#cooldown.has(id)) continue;
      this.lastLagMs = Math.max(0, now - nextRefreshAt);
      started++;
      const run = this.#renew(id)
        .catch(() => undefined) // recorded as an event by the broker
        .finally(() => {
          this.#running.delete(id);
          // If the row is still due after our attempt (another process holds the
          // lease), give that process time to finish before looking again.
          this.#cooldown.set(id, this.#clock.now() + 1000);
        });
      this.#running.set(id, run);
    }
    if (started > 0 && this.#running.size >= this.#concurrency)
      await Promise.race(this.#running.values());
    return started > 0 && due.length >= this.#batchSize;
  }
}
