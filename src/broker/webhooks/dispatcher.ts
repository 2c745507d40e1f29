/**
 * Delivers the outbox (webhook-store.ts), in every process that runs it: each tick
 * checks out due deliveries under a lease (a cluster sends each once at a time; a
 * process that dies leaves its rows to the others when the lease lapses), sends them,
 * and records the outcome, or the next attempt (core/delivery-policy.ts). It also
 * announces refresh tokens about to end. At least once: a receiver must treat a
 * `webhook-id` it has seen as done.
 */
import type { Clock } from "../../core/clock.js";
import {
  DEFAULT_DELIVERY_POLICY,
  type DeliveryPolicy,
  nextAttemptAt,
} from "../../core/delivery-policy.js";
import { lifecycleBody } from "../../core/lifecycle.js";
import type { Store } from "../../store/store.js";
import type { ClaimedDelivery } from "../../store/webhook-store.js";
import { attemptDelivery, deliveryAgent } from "./deliver.js";

export interface DispatcherOptions {
  /** How often to look for due work when idle (ms). */
  tickMs?: number;
  /** Deliveries in flight at once in this process. */
  concurrency?: number;
  /** How long a checked-out delivery stays this process's (ms); above `timeoutMs`. */
  leaseMs?: number;
  /** Per attempt (ms). */
  timeoutMs?: number;
  policy?: DeliveryPolicy;
}

export class Dispatcher {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #holder: string;
  readonly #random: () => number;
  readonly #tickMs: number;
  readonly #concurrency: number;
  readonly #leaseMs: number;
  readonly #timeoutMs: number;
  readonly #policy: DeliveryPolicy;
  readonly #agent;
  readonly #running = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<unknown> | undefined;
  #stopped = true;

  constructor(
    store: Store,
    clock: Clock,
    holder: string,
    random: () => number,
    options: DispatcherOptions = {},
  ) {
    this.#store = store;
    this.#clock = clock;
    this.#holder = holder;
    this.#random = random;
    this.#tickMs = options.tickMs ?? 500;
    this.#concurrency = options.concurrency ?? 16;
    this.#timeoutMs = options.timeoutMs ?? 15_000;
    this.#leaseMs = Math.max(options.leaseMs ?? 60_000, this.#timeoutMs + 1_000);
    this.#policy = options.policy ?? DEFAULT_DELIVERY_POLICY;
    this.#agent = deliveryAgent(this.#timeoutMs);
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule(0);
  }

  /** Stops taking work and waits for the attempts in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#ticking?.catch(() => undefined);
    await Promise.allSettled([...this.#running]);
    await this.#agent.close();
  }

  /** Sends everything due now and waits for it (tests, `webhook deliver`). */
  async drain(): Promise<void> {
    for (;;) {
      const more = await this.tick();
      await Promise.allSettled([...this.#running]);
      if (!more) return;
    }
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      const run = this.tick();
      this.#ticking = run;
      run.then(
        (more) => this.#schedule(more ? 0 : this.#tickMs),
        // The database is away: try again later; nothing was lost, the rows wait.
        () => this.#schedule(this.#tickMs * 4),
      );
    }, delayMs);
    this.#timer.unref();
  }

  /** One pass; `true` when more may be due at once. */
  async tick(): Promise<boolean> {
    const now = this.#clock.now();
    await this.#announceRefreshTokenEnds(now);
    const free = this.#concurrency - this.#running.size;
    if (free <= 0) {
      await Promise.race(this.#running);
      return true;
    }
    const claimed = await this.#store.webhooks.claimDeliveries(
      now,
      free,
      now + this.#leaseMs,
      this.#holder,
    );
    for (const delivery of claimed) {
      const run = this.#attempt(delivery)
        .catch(() => undefined) // recorded in the row; the database being away is retried
        .finally(() => this.#running.delete(run));
      this.#running.add(run);
    }
    return claimed.length === free;
  }

  async #attempt(delivery: ClaimedDelivery): Promise<void> {
    const now = this.#clock.now();
    const result = delivery.enabled
      ? await attemptDelivery(
          this.#agent,
          {
            url: delivery.url,
            secret: delivery.secret,
            messageId: delivery.messageId,
            payload: delivery.payload,
          },
          now,
          this.#timeoutMs,
        )
      : { ok: false, httpStatus: null, error: "the webhook is disabled" };
    const after = this.#clock.now();
    const retryAt =
      result.ok || !delivery.enabled
        ? null
        : nextAttemptAt(
            delivery.attempts + 1,
            delivery.createdAt,
            after,
            this.#policy,
            this.#random,
          );
    await this.#store.webhooks.completeAttempt(
      delivery.id,
      this.#holder,
      { ...result, nextAttemptAt: retryAt },
      after,
    );
  }

  /** `connection.refresh_token_expiring`, once per refresh token end, cluster-wide. */
  async #announceRefreshTokenEnds(now: number): Promise<void> {
    // A read first: the transaction (a write lock on SQLite) only when one is due.
    if (!(await this.#store.webhooks.refreshTokenWarningsDue(now))) return;
    await this.#store.transaction(async (trx) => {
      const due = await trx.webhooks.takeRefreshTokenWarnings(now, 100);
      for (const warning of due) {
        const body = lifecycleBody(
          "connection.refresh_token_expiring",
          warning,
          { previousStatus: warning.status, status: warning.status },
          now,
          { refreshTokenExpiresAt: warning.refreshTokenExpiresAt },
        );
        await trx.webhooks.enqueue(body, now);
      }
    });
  }
}
