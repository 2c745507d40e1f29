/**
 * Every failure Tokenwarden reports carries one of these stable codes. Adapters map
 * them to HTTP statuses and exit codes; callers switch on them. Messages are written
 * for people and never contain a secret.
 */
export const ERROR_CODES = [
  "invalid_config",
  "not_found",
  "needs_reauth",
  "pending_authorization",
  "token_endpoint_error",
  "token_response_invalid",
  "network_error",
  "timeout",
  "tls_error",
  "hook_error",
  "unauthorized",
  "forbidden",
  "invalid_request",
  "conflict",
  "internal_error",
  "storage_error",
  // A connection's `rateLimit` (or an API's own Retry-After) holds the call: 429.
  "rate_limited",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface TokenwardenErrorDetails {
  /** The input field at fault, as a dotted path (`tokenUrl`, `parameters.region`). */
  field?: string;
  /** RFC 6749 §5.2 `error` sent by the authorization server. */
  oauthError?: string;
  /** RFC 6749 §5.2 `error_description` sent by the authorization server. */
  oauthErrorDescription?: string;
  /** HTTP status of the response that caused the failure, if there was one. */
  status?: number;
  /** Seconds the server asked us to wait (`Retry-After`), if it did. */
  retryAfterSeconds?: number;
  /** Every problem found in one input, for forms that show each field's error. */
  issues?: readonly FieldIssue[];
  cause?: unknown;
}

export interface FieldIssue {
  field: string;
  message: string;
}

export class TokenwardenError extends Error {
  override readonly name = "TokenwardenError";
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly oauthError: string | undefined;
  readonly oauthErrorDescription: string | undefined;
  readonly status: number | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly issues: readonly FieldIssue[] | undefined;

  constructor(code: ErrorCode, message: string, details: TokenwardenErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.field = details.field;
    this.oauthError = details.oauthError;
    this.oauthErrorDescription = details.oauthErrorDescription;
    this.status = details.status;
    this.retryAfterSeconds = details.retryAfterSeconds;
    this.issues = details.issues;
  }

  /** A plain, secret-free view for events, API responses and logs. */
  toJSON(): {
    code: ErrorCode;
    message: string;
    field?: string;
    oauthError?: string;
    oauthErrorDescription?: string;
    status?: number;
    issues?: readonly FieldIssue[];
  } {
    return {
      code: this.code,
      message: this.message,
      ...(this.field === undefined ? {} : { field: this.field }),
      ...(this.oauthError === undefined ? {} : { oauthError: this.oauthError }),
      ...(this.oauthErrorDescription === undefined
        ? {}
        : { oauthErrorDescription: this.oauthErrorDescription }),
      ...(this.status === undefined ? {} : { status: this.status }),
      ...(this.issues === undefined ? {} : { issues: this.issues }),
    };
  }
}

export function invalidConfig(field: string, reason: string): TokenwardenError {
  return new TokenwardenError("invalid_config", `${field}: ${reason}`, { field });
}

export function isTokenwardenError(value: unknown): value is TokenwardenError {
  return value instanceof TokenwardenError;
}
