/**
 * The work a broker does on its own: the scheduler's renewals before expiry and the
 * webhook deliveries, each started with the broker unless turned off (a one-shot CLI
 * command; a process that leaves deliveries to the others sharing the store), and
 * stopped on close. Also their figures for metrics, and a drain of the due deliveries
 * for tests and one-shot commands.
 */
import type { Clock } from "../core/clock.js";
import type { Store } from "../store/store.js";
import type { BackgroundFailures } from "./background-failures.js";
import { type RenewDue, Scheduler, type SchedulerOptions } from "./scheduler.js";
import { Dispatcher, type DispatcherOptions } from "./webhooks/dispatcher.js";

export interface BackgroundWorkContext {
  store: Store;
  clock: Clock;
  holderId: string;
  random: () => number;
  /** The scheduler's renewal of a due connection. */
  renewDue: RenewDue;
  failures: BackgroundFailures;
  /** `false`: no scheduler in this process. */
  scheduler?: boolean | SchedulerOptions | undefined;
  /** `false`: this process delivers no webhooks. */
  webhooks?: boolean | DispatcherOptions | undefined;
}

export class BackgroundWork {
  readonly #ctx: BackgroundWorkContext;
  readonly #scheduler: Scheduler | undefined;
  readonly #dispatcher: Dispatcher | undefined;

  constructor(ctx: BackgroundWorkContext) {
    this.#ctx = ctx;
    const { store, clock, holderId, random, failures } = ctx;
    if (ctx.scheduler !== false) {
      const schedulerOptions = ctx.scheduler === true ? {} : (ctx.scheduler ?? {});
      this.#scheduler = new Scheduler(
        store,
        clock,
        (due) => ctx.renewDue(due).catch((error: unknown) => failures.renewalFailed(due.id, error)),
        {
          onTickFailed: (error, count) => failures.schedulerFailed(error, count),
          ...schedulerOptions,
        },
      );
      this.#scheduler.start();
    }
    if (ctx.webhooks !== false) {
      this.#dispatcher = new Dispatcher(
        store,
        clock,
        holderId,
        random,
        ctx.webhooks === true ? {} : (ctx.webhooks ?? {}),
      );
      this.#dispatcher.start();
    }
  }

  /** Delivers every webhook due now and waits for the attempts. */
  async deliverWebhooks(): Promise<void> {
    if (this.#dispatcher !== undefined) return this.#dispatcher.drain();
    const { store, clock, holderId, random } = this.#ctx;
    const once = new Dispatcher(store, clock, holderId, random);
    try {
      await once.drain();
    } finally {
      await once.stop();
    }
  }

  /** The scheduler's last observed lag in ms. */
  get schedulerLagMs(): number {
    return this.#scheduler?.lastLagMs ?? 0;
  }

  /** Renewals the scheduler runs now, and the most it has run at once. */
  get schedulerInFlight(): { now: number; peak: number } {
    return { now: this.#scheduler?.inFlight ?? 0, peak: this.#scheduler?.peakInFlight ?? 0 };
  }

  /** Stops the scheduler and waits for the renewals it started. */
  stopScheduler(): Promise<void> {
    return this.#scheduler?.stop() ?? Promise.resolve();
  }

  /** Stops taking deliveries and waits for the attempts in flight. */
  stopDeliveries(): Promise<void> {
    return this.#dispatcher?.stop() ?? Promise.resolve();
  }
}
