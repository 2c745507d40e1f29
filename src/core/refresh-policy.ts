/**
 * When a token must, may or need not be refreshed. Pure functions of a token set,
 * the integration's settings and the time, so that the broker, the scheduler and the
 * tests agree on one answer.
 */
import { isUnattendedGrant } from "./grants.js";
import type { GrantType, SessionMode } from "./integration.js";
import type { TokenSet } from "./token-set.js";

export interface RefreshSettings {
  session: SessionMode;
  fixedTtlSeconds: number;
  refreshAheadSeconds: number;
}

/**
 * The longest lifetime taken as meant: ten years. A server (or a hook, or a response
 * map) saying more (`1e308`, a 23-digit string, a date in the year 200000) is treated
 * as having said nothing, as when `expires_in` is absent: `auto` falls back to
 * `fixedTtlSeconds`, `none` keeps no expiry. Every stored time then stays well inside
 * what a Date, a PostgreSQL bigint and an ISO 8601 string can hold.
 */
export const MAX_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;

/** What the server said about the lifetime, before the session mode is applied. */
export interface ServerExpiry {
  /** `expires_in`, seconds from the response. */
  expiresInSeconds?: number;
  /** An absolute expiry from a `responseMap.expiresAt` field (epoch ms). */
  expiresAtMs?: number;
}

/**
 * The expiry to store: `fixed` ignores the server, `auto` uses it and falls back to
 * `fixedTtlSeconds`, `none` keeps what the server said (for display) but the token is
 * never refreshed. A lifetime of zero or less is treated as unknown: honouring it
 * would make the token stale before anyone could use it; so is one beyond
 * MAX_LIFETIME_SECONDS.
 */
export function expiryFor(
  server: ServerExpiry,
  settings: RefreshSettings,
  issuedAt: number,
): number | null {
  const longest = issuedAt + MAX_LIFETIME_SECONDS * 1000;
  // The schema bounds fixedTtlSeconds; a document stored before that bound existed is not re-read through it.
  const fixed = Math.min(issuedAt + settings.fixedTtlSeconds * 1000, longest);
  if (settings.session === "fixed") return fixed;
  let fromServer: number | null = null;
  const { expiresAtMs, expiresInSeconds } = server;
  if (expiresAtMs !== undefined && expiresAtMs > issuedAt && expiresAtMs <= longest)
    fromServer = expiresAtMs;
  else if (
    expiresInSeconds !== undefined &&
    expiresInSeconds > 0 &&
    expiresInSeconds <= MAX_LIFETIME_SECONDS
  ) {
    fromServer = issuedAt + expiresInSeconds * 1000;
  }
  if (settings.session === "none") return fromServer;
  return fromServer ?? fixed;
}

/**
 * A duration no longer than half the token's lifetime: the one rule that lets servers
 * issuing very short-lived tokens work (both the refresh lead and a caller's minimum
 * remaining life are capped by it).
 */
function cappedAtHalfLife(token: TokenSet, ms: number): number {
  if (token.expiresAt === null) return ms;
  return Math.min(ms, Math.max(0, token.expiresAt - token.issuedAt) / 2);
}

/** How long before expiry the refresh window opens: `refreshAheadSeconds`, at most half the lifetime. */
export function refreshLeadMs(token: TokenSet, settings: RefreshSettings): number {
  if (token.expiresAt === null) return 0;
  return cappedAtHalfLife(token, settings.refreshAheadSeconds * 1000);
}

/** When the refresh window opens (epoch ms), or `null` if this token is never refreshed. */
export function refreshWindowOpensAt(token: TokenSet, settings: RefreshSettings): number | null {
  if (settings.session === "none" || token.expiresAt === null) return null;
  return token.expiresAt - refreshLeadMs(token, settings);
}

export function isInRefreshWindow(
  token: TokenSet,
  settings: RefreshSettings,
  now: number,
): boolean {
  const opensAt = refreshWindowOpensAt(token, settings);
  return opensAt !== null && now >= opensAt;
}

/**
 * Whether a caller asking for `minTtlSeconds` of validity can be given this token.
 * Like the refresh lead, the requirement is capped at half the token's lifetime: a
 * server issuing 10-second tokens must not make every token "stale" on arrival.
 * `session: none` tokens are served as they are; nothing could replace them.
 */
export function isUsable(
  token: TokenSet,
  settings: RefreshSettings,
  now: number,
  minTtlSeconds: number,
): boolean {
  if (settings.session === "none" || token.expiresAt === null) return true;
  const required = cappedAtHalfLife(token, minTtlSeconds * 1000);
  return token.expiresAt - now > required;
}

/** What decides whether a connection can get a new token by itself. */
export interface RenewalSettings {
  grantType: GrantType;
  session: SessionMode;
  refreshHook?: string | undefined;
}

/**
 * The one renewability rule: can a new token be had now without a person? A grant
 * that needs no user, a refresh hook, or a refresh token (the token set's, or for
 * grant `refresh_token` the one the connection was given) is enough. `session: none`
 * means a token, once obtained, is never renewed; the first one is still obtained.
 */
export function canRenewUnattended(
  settings: RenewalSettings,
  token: TokenSet | undefined,
  startingRefreshToken?: string,
): boolean {
  if (token !== undefined && settings.session === "none") return false;
  if (isUnattendedGrant(settings.grantType) || settings.refreshHook !== undefined) return true;
  if (token?.refreshToken !== undefined) return true;
  return (
    token === undefined &&
    settings.grantType === "refresh_token" &&
    startingRefreshToken !== undefined
  );
}

/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff
 * and Jitter"): a random wait in [base, min(cap, base * 2^attempt)], so failing
 * connections do not retry in lockstep. `random` is injected for tests.
 */
export function backoffMs(
  attempt: number,
  options: { baseMs?: number; capMs?: number; random?: () => number } = {},
): number {
  const base = options.baseMs ?? 1000;
  const cap = options.capMs ?? 5 * 60_000;
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt));
  const random = options.random ?? Math.random;
  return Math.round(base + random() * Math.max(0, ceiling - base));
}

/**
 * When a refresh token ends, from the lifetime a token response gave it
 * (`refresh_token_expires_in`); a lifetime that is not positive or beyond
 * MAX_LIFETIME_SECONDS is no known end.
 */
export function refreshTokenExpiryFrom(
  expiresInSeconds: number | undefined,
  issuedAt: number,
): number | undefined {
  if (expiresInSeconds === undefined || !(expiresInSeconds > 0)) return undefined;
  if (expiresInSeconds > MAX_LIFETIME_SECONDS) return undefined;
  return issuedAt + Math.round(expiresInSeconds * 1000);
}

export interface KeepAliveSettings {
  session: SessionMode;
  refreshAtLeastEverySeconds?: number | undefined;
}

/**
 * Keep-alive: when a token issued at `issuedAt` must be renewed although nobody asked,
 * so that a refresh token with an idle lifetime stays alive. `null`: no keep-alive
 * (none configured, or `session: none`, which is never renewed).
 */
export function keepAliveDueAt(issuedAt: number, settings: KeepAliveSettings): number | null {
  if (settings.refreshAtLeastEverySeconds === undefined || settings.session === "none") return null;
  return issuedAt + settings.refreshAtLeastEverySeconds * 1000;
}

export function isKeepAliveDue(token: TokenSet, settings: KeepAliveSettings, now: number): boolean {
  const due = keepAliveDueAt(token.issuedAt, settings);
  return due !== null && now >= due;
}

/**
 * When to warn that the refresh token is about to end (`connection.refresh_token_expiring`):
 * `refreshTokenWarningSeconds` before its end; `null` when its end is unknown.
 */
export function refreshTokenWarningAt(
  refreshTokenExpiresAt: number | undefined,
  settings: { refreshTokenWarningSeconds?: number | undefined },
): number | null {
  if (refreshTokenExpiresAt === undefined) return null;
  const lead = settings.refreshTokenWarningSeconds ?? REFRESH_TOKEN_WARNING_SECONDS;
  return refreshTokenExpiresAt - lead * 1000;
}

/** The default of `refreshTokenWarningSeconds`: a week. */
export const REFRESH_TOKEN_WARNING_SECONDS = 7 * 24 * 3600;
