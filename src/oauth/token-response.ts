/**
 * Reading what a token endpoint answered (RFC 6749 §5.1 and §5.2), tolerant of the
 * servers that stray from it: form-encoded or text bodies, `201`, `expires_in` as a
 * string, no `token_type`, an `error` inside a 200, fields under other names.
 */
import type { Clock } from "../core/clock.js";
import { TokenwardenError } from "../core/errors.js";
import type { ResponseMap } from "../core/integration.js";
import { expiryFor, type RefreshSettings, refreshTokenExpiryFrom } from "../core/refresh-policy.js";
import type { TokenSet } from "../core/token-set.js";
import { CONTROL_CHARACTERS } from "../core/url-template.js";
import { type HttpResponse, headerValue } from "./http.js";

export interface TokenResponseSettings extends RefreshSettings {
  responseMap: ResponseMap;
}

/** Decodes a body as JSON, or as a query string when it is not JSON (GitHub's default). */
export function parseResponseBody(res: HttpResponse): Record<string, unknown> | undefined {
  const text = res.body.trim();
  if (text === "") return undefined;
  if (text.startsWith("{")) {
    try {
      const parsed: unknown = JSON.parse(text);
      return isRecord(parsed) ? parsed : undefined;
    } catch {
      return undefined;
    }
  }
  if (res.contentType.includes("html") || text.startsWith("<")) return undefined;
  if (!/^[^=&\s]+=/.test(text)) return undefined;
  return Object.fromEntries(new URLSearchParams(text));
}

/** Reads a dotted path (`data.token`, `items.0.value`); a key holding dots wins if present. */
export function valueAtPath(body: Record<string, unknown>, path: string): unknown {
  if (path in body) return body[path];
  let current: unknown = body;
  for (const part of path.split(".")) {
    if (Array.isArray(current)) current = current[Number(part)];
    else if (isRecord(current)) current = current[part];
    else return undefined;
  }
  return current;
}

/** The server's error, if the body carries one (RFC 6749 §5.2 or `responseMap.error`). */
export function oauthErrorIn(
  body: Record<string, unknown> | undefined,
  map: ResponseMap = {},
): { error: string; description?: string } | undefined {
  if (body === undefined) return undefined;
  const raw = valueAtPath(body, map.error ?? "error");
  const error =
    typeof raw === "string" ? raw : isRecord(raw) ? textOf(raw.code ?? raw.type) : undefined;
  if (error === undefined || error === "") return undefined;
  const described =
    valueAtPath(body, map.errorDescription ?? "error_description") ??
    (isRecord(raw) ? raw.message : undefined);
  const description = textOf(described);
  return description === undefined ? { error } : { error, description };
}

export function tokenEndpointError(
  res: HttpResponse,
  body: Record<string, unknown> | undefined,
  map: ResponseMap,
  what: string,
): TokenwardenError {
  const oauth = oauthErrorIn(body, map);
  const retryAfter = parseRetryAfter(headerValue(res.headers["retry-after"]));
  const details = {
    status: res.status,
    ...(oauth === undefined ? {} : { oauthError: oauth.error }),
    ...(oauth?.description === undefined ? {} : { oauthErrorDescription: oauth.description }),
    ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }),
  };
  const message =
    oauth === undefined
      ? `${what} answered HTTP ${res.status}${res.contentType === "" ? "" : ` (${res.contentType})`} without an OAuth error`
      : `${what} refused: ${oauth.error}${oauth.description === undefined ? "" : ` (${oauth.description})`}`;
  return new TokenwardenError("token_endpoint_error", message, details);
}

export function parseTokenResponse(
  res: HttpResponse,
  settings: TokenResponseSettings,
  clock: Clock,
  what: string,
): TokenSet {
  const body = parseResponseBody(res);
  const map = settings.responseMap;
  if (res.status < 200 || res.status > 299 || oauthErrorIn(body, map) !== undefined) {
    throw tokenEndpointError(res, body, map, what);
  }
  if (body === undefined) {
    throw new TokenwardenError(
      "token_response_invalid",
      `${what} answered HTTP ${res.status} with a body that is neither JSON nor form-encoded`,
      { status: res.status },
    );
  }
  const token = tokenSetFromBody(body, settings, clock.now(), what);
  token.httpStatus = res.status;
  return token;
}

/** Builds a token set from a decoded success body (a token response or a hook's output). */
export function tokenSetFromBody(
  body: Record<string, unknown>,
  settings: TokenResponseSettings,
  issuedAt: number,
  what: string,
): TokenSet {
  const map = settings.responseMap;
  const accessToken = textOf(valueAtPath(body, map.accessToken ?? "access_token"));
  if (accessToken === undefined || accessToken === "") {
    throw new TokenwardenError(
      "token_response_invalid",
      `${what} answered without ${map.accessToken ?? "access_token"}`,
    );
  }
  const tokenType = textOf(valueAtPath(body, map.tokenType ?? "token_type"));
  const refreshToken = textOf(valueAtPath(body, map.refreshToken ?? "refresh_token"));
  // These go into headers (`Authorization: Bearer ...`): CR or LF would split them.
  for (const [name, value] of [
    [map.accessToken ?? "access_token", accessToken],
    [map.tokenType ?? "token_type", tokenType],
    [map.refreshToken ?? "refresh_token", refreshToken],
  ] as const) {
    if (value !== undefined && CONTROL_CHARACTERS.test(value)) {
      throw new TokenwardenError(
        "token_response_invalid",
        `${what} answered a ${name} holding control characters`,
      );
    }
  }
  const scope = scopeOf(valueAtPath(body, map.scope ?? "scope"));
  const expiresInSeconds = numberOf(valueAtPath(body, map.expiresIn ?? "expires_in"));
  const expiresAtMs =
    map.expiresAt === undefined ? undefined : absoluteTimeOf(valueAtPath(body, map.expiresAt));
  const token: TokenSet = {
    accessToken,
    // RFC 6750 names the type `Bearer`; servers send `bearer`, `BEARER` or nothing.
    tokenType: tokenType === undefined || /^bearer$/i.test(tokenType) ? "Bearer" : tokenType,
    issuedAt,
    expiresAt: expiryFor(
      {
        ...(expiresInSeconds === undefined ? {} : { expiresInSeconds }),
        ...(expiresAtMs === undefined ? {} : { expiresAtMs }),
      },
      settings,
      issuedAt,
    ),
    raw: body,
  };
  if (refreshToken !== undefined && refreshToken !== "") token.refreshToken = refreshToken;
  if (scope !== undefined) token.scope = scope;
  const refreshTokenExpiresAt = refreshTokenExpiryFrom(
    numberOf(valueAtPath(body, map.refreshTokenExpiresIn ?? "refresh_token_expires_in")),
    issuedAt,
  );
  if (refreshTokenExpiresAt !== undefined) token.refreshTokenExpiresAt = refreshTokenExpiresAt;
  return token;
}

/** `expires_in` as a number, or a numeric string such as `"3600"` or `"3599.5"`. */
export function numberOf(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  return undefined;
}

/**
 * An absolute time as epoch seconds, epoch milliseconds or an ISO 8601 string; one
 * a Date cannot hold is no time at all. (expiryFor then bounds it to a sane lifetime.)
 */
export function absoluteTimeOf(value: unknown): number | undefined {
  const n = numberOf(value);
  let ms: number | undefined;
  if (n !== undefined)
    ms = n > 1e11 ? n : n * 1000; // 1e11 s is the year 5138; 1e11 ms is 1973
  else if (typeof value === "string") {
    const parsed = Date.parse(value);
    ms = Number.isNaN(parsed) ? undefined : parsed;
  }
  return ms !== undefined && Math.abs(ms) <= MAX_DATE_MS ? ms : undefined;
}

/** The largest time a Date holds (ECMA-262 §21.4.1.1). */
const MAX_DATE_MS = 8.64e15;
/** A server asking to wait longer than a day is waited on for a day, then asked again. */
export const MAX_RETRY_AFTER_SECONDS = 24 * 3600;

/** RFC 9110 §10.2.3: delay-seconds or an HTTP date, at most MAX_RETRY_AFTER_SECONDS. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  let seconds: number | undefined;
  if (/^\d+$/.test(value.trim())) seconds = Number(value.trim());
  else {
    const date = Date.parse(value);
    seconds = Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
  }
  return seconds === undefined ? undefined : Math.min(seconds, MAX_RETRY_AFTER_SECONDS);
}

function scopeOf(value: unknown): string | undefined {
  if (Array.isArray(value)) return value.filter((s) => typeof s === "string").join(" ");
  return textOf(value);
}

function textOf(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
