import type { ErrorSummary } from "../core/connection.js";
import { TokenwardenError } from "../core/errors.js";

/**
 * What a failed attempt means for the connection:
 * - `reauth`: the server rejected the grant or the client (RFC 6749 §5.2
 *   `invalid_grant`, `invalid_client`, `unauthorized_client`); retrying cannot help
 *   until a person acts, so the connection goes to `needs_reauth` once and stops.
 * - `config`: our own configuration is wrong; nothing is retried until it changes.
 * - `transient`: network, timeout, TLS, 5xx, 429, unreadable answers and every other
 *   server error; retried with backoff while the old token is still served.
 */
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
 * (a bug, a driver failure) keeps its message and is treated as transient, so the
 * attempt is recorded and retried with backoff rather than lost.
 */
export function asTokenwardenError(error: unknown): TokenwardenError {
  if (error instanceof TokenwardenError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new TokenwardenError("network_error", `unexpected failure: ${message}`, { cause: error });
}

export function summarize(error: TokenwardenError, at: number): ErrorSummary {
  const summary: ErrorSummary = { code: error.code, message: error.message, at };
  if (error.oauthError !== undefined) summary.oauthError = error.oauthError;
  if (error.oauthErrorDescription !== undefined)
    summary.oauthErrorDescription = error.oauthErrorDescription;
  if (error.status !== undefined) summary.status = error.status;
  return summary;
}
