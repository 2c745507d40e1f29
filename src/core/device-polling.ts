/**
 * When a device flow's poll failed (RFC 8628 §3.5), whether the flow goes on, and how
 * long until the next poll. The flow ends on `access_denied`, `expired_token` or any
 * other answer the server gives on purpose; the server having a bad minute (no answer,
 * a timeout, a 5xx, a 429, `server_error`, `temporarily_unavailable`) is not one: §3.5
 * asks the client to poll less often then ("doubling the polling interval on each such
 * connection timeout, is RECOMMENDED"), and the code's expiry bounds it all.
 */
import type { TokenwardenError } from "./errors.js";

/** The longest wait a backoff alone makes (the server's own interval may be longer). */
export const MAX_POLL_BACKOFF_MS = 60_000;
/** A server's Retry-After is honoured up to this. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/** OAuth errors that say "not now" rather than "no" (RFC 6749 §4.1.2.1's, as servers send them). */
const UNAVAILABLE_ERRORS = new Set(["server_error", "temporarily_unavailable"]);

/** Whether the poll failed for now only: polled again later, the flow going on. */
export function isTransientPollFailure(failure: TokenwardenError): boolean {
  if (failure.code === "network_error" || failure.code === "timeout") return true;
  if (failure.code !== "token_endpoint_error") return false;
  if (failure.oauthError !== undefined) return UNAVAILABLE_ERRORS.has(failure.oauthError);
  const status = failure.status ?? 0;
  return status === 429 || status >= 500;
}

/**
 * How long after the `failures`-th transient failure in a row the next poll is due:
 * the interval doubled each time, bounded by a minute (or the interval when that is
 * longer), and never sooner than the server's `Retry-After`, itself bounded.
 */
export function pollBackoffMs(
  intervalMs: number,
  failures: number,
  retryAfterSeconds?: number,
): number {
  const bound = Math.max(intervalMs, MAX_POLL_BACKOFF_MS);
  const doubled = Math.min(intervalMs * 2 ** Math.min(Math.max(failures, 1), 20), bound);
  const asked = Math.min((retryAfterSeconds ?? 0) * 1000, MAX_RETRY_AFTER_MS);
  return Math.max(doubled, asked);
}
