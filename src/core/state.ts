/**
 * The connection's state machine, as pure functions: each returns the patch a step
 * writes (compare Vault oauthapp's `SetToken`, `SetAuthServerError`,
 * `SetTransientError` on its stored entry). The broker only ever writes these.
 */
import type { Connection, ConnectionState, ErrorSummary } from "./connection.js";
import type { FailureClass } from "./failure.js";
import type { Integration } from "./integration.js";
import {
  backoffMs,
  canRenewUnattended,
  keepAliveDueAt,
  refreshLeadMs,
  refreshTokenWarningAt,
  refreshWindowOpensAt,
} from "./refresh-policy.js";
import type { TokenSet } from "./token-set.js";

/** A state change; `token: null` forgets the token, `undefined` leaves it. */
export type StatePatch = Partial<Omit<ConnectionState, "tokenVersion">> & {
  token?: TokenSet | null;
  /**
   * When the refresh token's end is to be announced (refresh-policy.ts); the store
   * announces each end once, however often it is written again.
   */
  refreshTokenWarnAt?: number | null;
};

/** A new connection: waiting for a person (authorization code), or due at once. */
export function initialState(integration: Integration, now: number): ConnectionState {
  const needsPerson = integration.grantType === "authorization_code";
  return {
    status: needsPerson ? "pending_authorization" : "active",
    expiresAt: null,
    nextRefreshAt: needsPerson ? null : now,
    lastRefreshAt: null,
    failureCount: 0,
    lastError: null,
    scope: null,
    tokenVersion: 0,
  };
}

/**
 * When the scheduler should look at this token next: in its refresh window, spread
 * over the window's first tenth so that tokens issued together do not all come due
 * in one tick, and each still refreshes well before expiry. `null`: never.
 */
export function nextRefreshAt(
  integration: Integration,
  connection: Connection,
  token: TokenSet,
  now: number,
  random: () => number,
): number | null {
  if (!canRenewUnattended(integration, token, connection.refreshToken)) return null;
  const opensAt = refreshWindowOpensAt(token, integration);
  const jitter = Math.floor(random() * refreshLeadMs(token, integration) * 0.1);
  const inWindow = opensAt === null ? null : Math.max(now, opensAt + jitter);
  // Keep-alive: an idle connection is refreshed anyway, before its refresh token idles out.
  const keepAlive = keepAliveDueAt(token.issuedAt, integration);
  if (keepAlive === null) return inWindow;
  return inWindow === null
    ? Math.max(now, keepAlive)
    : Math.min(inWindow, Math.max(now, keepAlive));
}

/** A new token was obtained (any grant, a refresh, a hook, an authorization). */
export function afterToken(
  integration: Integration,
  connection: Connection,
  token: TokenSet,
  now: number,
  random: () => number,
): StatePatch {
  return {
    token,
    status: "active",
    expiresAt: token.expiresAt,
    scope: token.scope ?? null,
    lastRefreshAt: now,
    failureCount: 0,
    lastError: null,
    nextRefreshAt: nextRefreshAt(integration, connection, token, now, random),
    refreshTokenExpiresAt: token.refreshTokenExpiresAt ?? null,
    refreshTokenWarnAt: refreshTokenWarningAt(token.refreshTokenExpiresAt, integration),
  };
}

/**
 * An attempt failed: `needs_reauth` once and stop; a configuration fault waits for
 * a change; anything else backs off (exponentially, with jitter, at least as long
 * as the server's `Retry-After`).
 */
export function afterFailure(
  state: Pick<ConnectionState, "failureCount">,
  failure: FailureClass,
  lastError: ErrorSummary,
  now: number,
  options: { random: () => number; retryAfterSeconds?: number | undefined },
): StatePatch {
  const failureCount = state.failureCount + 1;
  switch (failure) {
    case "reauth":
      return { status: "needs_reauth", nextRefreshAt: null, failureCount, lastError };
    case "config":
      return { status: "error", nextRefreshAt: null, failureCount, lastError };
    case "transient": {
      const wait = Math.max(
        backoffMs(failureCount - 1, { random: options.random }),
        (options.retryAfterSeconds ?? 0) * 1000,
      );
      return { status: "error", nextRefreshAt: now + wait, failureCount, lastError };
    }
  }
}

/** The tokens were revoked at the server and forgotten. */
export function afterRevoke(): StatePatch {
  return {
    token: null,
    status: "revoked",
    expiresAt: null,
    nextRefreshAt: null,
    scope: null,
    failureCount: 0,
    lastError: null,
    refreshTokenExpiresAt: null,
    refreshTokenWarnAt: null,
  };
}

/** The token forgotten and the state as for a new connection. */
export function startOver(integration: Integration, now: number): StatePatch {
  const { tokenVersion: _version, ...initial } = initialState(integration, now);
  return { ...initial, token: null, refreshTokenExpiresAt: null, refreshTokenWarnAt: null };
}

/**
 * After a person changed the configuration. A connection moved to another
 * integration, or given a new starting refresh token, starts over; one stuck in
 * `needs_reauth` or `error` gets a new try, since the change may be the fix.
 */
export function afterConfigChange(
  integration: Integration,
  before: { connection: Connection; state: ConnectionState; token: TokenSet | undefined },
  after: Connection,
  now: number,
): StatePatch {
  const startsOver =
    before.connection.integration !== after.integration ||
    (integration.grantType === "refresh_token" &&
      after.refreshToken !== before.connection.refreshToken);
  if (startsOver) return startOver(integration, now);
  const { status } = before.state;
  if (status !== "needs_reauth" && status !== "error") return {};
  if (!canRenewUnattended(integration, before.token, after.refreshToken)) return {};
  return { status: "active", nextRefreshAt: now, failureCount: 0, lastError: null };
}
