/**
 * What a failed attempt means for a connection, as a class the state machine
 * (state.ts) acts on:
 * - `reauth`: the server rejected the grant or the client (RFC 6749 §5.2
 *   `invalid_grant`, `invalid_client`, `unauthorized_client`); retrying cannot help
 *   until a person acts, so the connection goes to `needs_reauth` once and stops.
 * - `config`: our own configuration is wrong; nothing is retried until it changes.
 * - `transient`: network, timeout, TLS, 5xx, 429, unreadable answers, the database,
 *   and bugs; retried with backoff while the old token is still served.
 */
import type { ErrorSummary } from "./connection.js";
import { TokenwardenError } from "./errors.js";

export type FailureClass = "reauth" | "config" | "transient";

const REAUTH_ERRORS = new Set(["invalid_grant", "invalid_client", "unauthorized_client"]);

export function classifyFailure(error: TokenwardenError): FailureClass {
  if (error.code === "needs_reauth") return "reauth";
  if (error.code === "invalid_config") return "config";
  if (
    error.code === "token_endpoint_error" &&
    error.oauthError !== undefined &&
    REAUTH_ERRORS.has(error.oauthError)
  ) {
    return "reauth";
  }
  return "transient";
}

/**
 * Anything thrown inside an attempt, as a coded error. An exception that is not ours
 * is a bug: `internal_error`, whose message says no more than that (the cause is
 * kept on the error for the log, and may hold anything).
 */
export function asTokenwardenError(error: unknown): TokenwardenError {
  if (error instanceof TokenwardenError) return error;
  return new TokenwardenError("internal_error", "internal error; the log has the details", {
    cause: error,
  });
}

export function summarize(error: TokenwardenError, at: number): ErrorSummary {
  const summary: ErrorSummary = { code: error.code, message: error.message, at };
  if (error.oauthError !== undefined) summary.oauthError = error.oauthError;
  if (error.oauthErrorDescription !== undefined)
    summary.oauthErrorDescription = error.oauthErrorDescription;
  if (error.status !== undefined) summary.status = error.status;
  return summary;
}
