import type { ErrorCode } from "../core/errors.js";
import { TokenwardenError } from "../core/errors.js";
import { STORAGE_RETRY_AFTER_SECONDS } from "../store/storage-errors.js";

declare module "fastify" {
  interface FastifyReply {
    /** The error code this reply answers with (for metrics); null for any other answer. */
    errorCode: ErrorCode | null;
  }
}

/** HTTP status for each error code: the client's fault (4xx) or the upstream's (5xx). */
const STATUS: Record<ErrorCode, number> = {
  invalid_config: 400,
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  needs_reauth: 409,
  pending_authorization: 409,
  token_endpoint_error: 502,
  token_response_invalid: 502,
  network_error: 502,
  tls_error: 502,
  hook_error: 502,
  timeout: 504,
  internal_error: 500,
  storage_error: 503,
  rate_limited: 429,
};

export function httpStatusFor(code: ErrorCode): number {
  return STATUS[code];
}

/**
 * `Retry-After` seconds for an error worth retrying as it is: the database is away
 * (`storage_error`, 503), a connection is backing off after a failure, or the server
 * said when. Undefined for the others.
 */
export function retryAfterFor(error: TokenwardenError): number | undefined {
  if (error.code === "storage_error") return error.retryAfterSeconds ?? STORAGE_RETRY_AFTER_SECONDS;
  // A connection backing off after a failure, or a server's own Retry-After.
  return error.retryAfterSeconds;
}

export interface ErrorBody {
  error: ReturnType<TokenwardenError["toJSON"]>;
}

/** `{ error: { code, message, field?, issues?, oauthError?, ... } }`, never a secret. */
export function errorBody(error: TokenwardenError): ErrorBody {
  const json = error.toJSON();
  // `status` in an error is the upstream server's; name it so it is not read as ours.
  const { status, ...rest } = json;
  return {
    error: status === undefined ? rest : ({ ...rest, upstreamStatus: status } as typeof json),
  };
}

/** Fastify's own errors (bad JSON, too large, unknown route) in Tokenwarden's shape. */
export function fromFrameworkError(error: {
  statusCode?: number;
  code?: string;
  message: string;
}): TokenwardenError | undefined {
  const status = error.statusCode ?? 500;
  if (error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
    return new TokenwardenError("invalid_config", "body: must be application/json", {
      field: "body",
    });
  }
  if (error.code?.startsWith("FST_ERR_CTP") === true || status === 400) {
    return new TokenwardenError("invalid_config", `body: ${error.message}`, { field: "body" });
  }
  if (status === 404) return new TokenwardenError("not_found", error.message);
  return undefined;
}

/** A failure that is not one of ours is a bug: 500, with details only in the log. */
export const INTERNAL_ERROR_BODY = {
  error: { code: "internal_error", message: "internal error; the service log has the details" },
} as const;
