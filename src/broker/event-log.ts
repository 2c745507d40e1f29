/**
 * Every attempt to obtain, refresh or revoke a token, and every hook run, is recorded
 * (the audit trail a person reads when a token goes wrong) and handed to listeners. Built only from codes, statuses and
 * the server's error text: an event never holds a secret. The reads (a connection's
 * history, the live feed) go through here too, with their limits.
 */
import type { Clock } from "../core/clock.js";
import type { TokenwardenError } from "../core/errors.js";
import {
  type EventAction,
  type EventTrigger,
  type NewTokenEvent,
  storedEvent,
  type TokenEvent,
} from "../core/events.js";
import type { EventStore } from "../store/store.js";

export interface EventSubject {
  connectionId: string;
  integration: string;
}

export interface EventResult {
  error?: TokenwardenError;
  httpStatus?: number | null;
  /** A note on an outcome that is neither a plain success nor the error's own text. */
  note?: string;
  /** A success despite `error` (a token obtained that could not be written yet). */
  succeeded?: boolean;
}

export class EventLog {
  readonly #store: EventStore;
  readonly #clock: Clock;
  readonly #emit: (event: TokenEvent) => void;
  /** Failures already told as events: a caller further up need not tell them again. */
  readonly #recorded = new WeakSet<object>();

  constructor(store: EventStore, clock: Clock, emit: (event: TokenEvent) => void) {
    this.#store = store;
    this.#clock = clock;
    this.#emit = emit;
  }

  async record(
    subject: EventSubject,
    trigger: EventTrigger,
    action: EventAction,
    started: number,
    result: EventResult,
  ): Promise<void> {
    const event = this.prepare(subject, trigger, action, started, result);
    let recorded: TokenEvent;
    try {
      recorded = await this.#store.appendEvent(event);
    } catch {
      // The store being down must not hide the attempt from listeners.
      recorded = storedEvent(event, 0);
    }
    this.#emit(recorded);
  }

  /**
   * The event of an attempt, for a caller that appends it itself, together with the
   * attempt's write (a batched renewal, write-behind.ts), and then calls `told`.
   */
  prepare(
    subject: EventSubject,
    trigger: EventTrigger,
    action: EventAction,
    started: number,
    result: EventResult,
  ): NewTokenEvent {
    const { error } = result;
    if (error !== undefined) this.#recorded.add(error);
    // Named fields, not `...subject` (see storedEvent): this runs once per renewal.
    return {
      connectionId: subject.connectionId,
      integration: subject.integration,
      at: this.#clock.now(),
      trigger,
      action,
      outcome: error === undefined || result.succeeded === true ? "success" : "failure",
      httpStatus: error?.status ?? result.httpStatus ?? null,
      errorCode: error?.code ?? null,
      errorDescription: result.note ?? (error === undefined ? null : describe(error)),
      durationMs: performance.now() - started,
    };
  }

  /** Hands listeners an event `prepare` made, once it is stored. */
  told(event: TokenEvent): void {
    this.#emit(event);
  }

  /** Whether this failure was recorded as an event (the attempt's own failure). */
  wasRecorded(error: unknown): boolean {
    return typeof error === "object" && error !== null && this.#recorded.has(error);
  }

  /** A connection's events, newest first, 50 by default and at most 500 a page. */
  async list(
    id: string,
    options: { limit?: number; beforeId?: number } = {},
  ): Promise<TokenEvent[]> {
    return this.#store.listEvents(id, {
      limit: clampLimit(options.limit ?? 50),
      ...(options.beforeId === undefined ? {} : { beforeId: options.beforeId }),
    });
  }

  /** Every connection's events after `afterId`, oldest first (the live feed). */
  async after(afterId: number, limit: number): Promise<TokenEvent[]> {
    return this.#store.listEventsAfter(afterId, clampLimit(limit));
  }

  /** The highest event id so far, 0 when there is none. */
  async lastId(): Promise<number> {
    return this.#store.lastEventId();
  }
}

function clampLimit(limit: number): number {
  return Math.min(Math.max(limit, 1), 500);
}

function describe(error: TokenwardenError): string {
  if (error.oauthError === undefined) return error.message;
  return `${error.oauthError}${error.oauthErrorDescription === undefined ? "" : `: ${error.oauthErrorDescription}`}`;
}
