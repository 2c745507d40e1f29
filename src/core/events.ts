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
