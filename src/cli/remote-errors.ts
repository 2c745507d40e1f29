/**
 * A service's answer as the CLI's error: the service's own `{ error: { code, message } }`
 * becomes the TokenwardenError a local command would throw (so the output and exit
 * status match); anything else says plainly that the service could not be heard.
 */
import { ERROR_CODES, type ErrorCode, TokenwardenError } from "../core/errors.js";

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** The service's `{ error: { code, message, ... } }`, or `undefined` for any other body. */
export function serviceError(answer: Answer): TokenwardenError | undefined {
  if (answer.status < 400) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    return undefined;
  }
  const error = (body as { error?: Record<string, unknown> } | null)?.error;
  if (
    typeof error !== "object" ||
    error === null ||
    typeof error.message !== "string" ||
    !(ERROR_CODES as readonly string[]).includes(String(error.code))
  ) {
    return undefined;
  }
  const text = (name: string) => (typeof error[name] === "string" ? error[name] : undefined);
  const retryAfter = Number(answer.headers["retry-after"]);
  return new TokenwardenError(error.code as ErrorCode, error.message, {
    ...(text("field") === undefined ? {} : { field: text("field") }),
    ...(text("oauthError") === undefined ? {} : { oauthError: text("oauthError") }),
    ...(text("oauthErrorDescription") === undefined
      ? {}
      : { oauthErrorDescription: text("oauthErrorDescription") }),
    ...(typeof error.upstreamStatus === "number" ? { status: error.upstreamStatus } : {}),
    ...(Array.isArray(error.issues) ? { issues: error.issues as [] } : {}),
    ...(Number.isInteger(retryAfter) && retryAfter >= 0 ? { retryAfterSeconds: retryAfter } : {}),
  });
}

/** An answer that is not the service's (a proxy in between, a wrong URL). */
export function unexpected(answer: Answer): TokenwardenError {
  const code: ErrorCode =
    answer.status === 401
      ? "unauthorized"
      : answer.status === 403
        ? "forbidden"
        : answer.status === 404
          ? "not_found"
          : answer.status >= 500
            ? "network_error"
            : "invalid_request";
  return new TokenwardenError(
    code,
    `the service answered HTTP ${answer.status} without an error body (is TOKENWARDEN_URL a Tokenwarden service?)`,
    { status: answer.status },
  );
}

export function unreachable(base: string, error: unknown): TokenwardenError {
  const reason =
    (error as { code?: string }).code ?? (error instanceof Error ? error.message : String(error));
  return new TokenwardenError("network_error", `cannot reach the service at ${base}: ${reason}`, {
    cause: error,
  });
}
