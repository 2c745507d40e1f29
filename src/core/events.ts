/**
 * The record of every attempt to obtain, refresh or revoke a token, and of every hook
 * run. Built only from codes, statuses and the server's error
 * text: an event never holds a secret.
 */
export const EVENT_TRIGGERS = ["schedule", "demand", "retry", "manual", "authorize"] as const;
export type EventTrigger = (typeof EVENT_TRIGGERS)[number];

/** `obtain`: a grant without a previous token; `hook`: a refresh done by the refresh hook. */
export type EventAction = "obtain" | "refresh" | "hook" | "revoke" | "authorize";
export type EventOutcome = "success" | "failure";

export interface TokenEvent {
  id: number;
  /** ISO 8601. */
  at: string;
  connectionId: string;
  integration: string;
  trigger: EventTrigger;
  action: EventAction;
  outcome: EventOutcome;
  httpStatus: number | null;
  errorCode: string | null;
  errorDescription: string | null;
  durationMs: number;
}

export type NewTokenEvent = Omit<TokenEvent, "id" | "at"> & { at: number };

/**
 * The event as stored under `id`. Every field is named rather than spread: on the
 * renewal path, a literal that starts with a spread and adds fields is slow in V8
 * (each added field takes the slow path, about a microsecond each in Node 20).
 */
export function storedEvent(event: NewTokenEvent, id: number): TokenEvent {
  return {
    id,
    at: new Date(event.at).toISOString(),
    connectionId: event.connectionId,
    integration: event.integration,
    trigger: event.trigger,
    action: event.action,
    outcome: event.outcome,
    httpStatus: event.httpStatus,
    errorCode: event.errorCode,
    errorDescription: event.errorDescription,
    durationMs: Math.round(event.durationMs),
  };
}
