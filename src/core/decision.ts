/**
 * The refresh decision: from a stored connection, its integration, what the caller
 * asked for and the time, whether to use the token held, renew it, or fail. Pure,
 * so the broker, the scheduler and the tests agree on one answer.
 */
import type { Connection, ConnectionState } from "./connection.js";
import { type ErrorCode, TokenwardenError } from "./errors.js";
import type { EventTrigger } from "./events.js";
import { isUnattendedGrant } from "./grants.js";
import type { Integration } from "./integration.js";
import {
  canRenewUnattended,
  isInRefreshWindow,
  isKeepAliveDue,
  isUsable,
} from "./refresh-policy.js";
import type { TokenSet } from "./token-set.js";

export interface TokenRequest {
  trigger: EventTrigger;
  /** The token must stay valid this long (capped at half its lifetime). */
  minTtlSeconds: number;
  /** A person's "Refresh now": any token newer than this version satisfies it. */
  afterVersion?: number;
  /** The API refused this access token: any other valid token satisfies the retry. */
  rejectedAccessToken?: string;
  /** A token used inside its refresh window: renew it now unless that cannot be done. */
  renewAhead?: boolean;
}

export interface ConnectionSnapshot {
  connection: Connection;
  state: ConnectionState;
  token: TokenSet | undefined;
}

export type Decision =
  /** `renewSoon`: usable, but inside its refresh window: renew in the background. */
  | { kind: "use"; token: TokenSet; renewSoon: boolean }
  | { kind: "renew" }
  | { kind: "fail"; error: TokenwardenError };

export function decide(
  snapshot: ConnectionSnapshot,
  integration: Integration,
  request: TokenRequest,
  now: number,
): Decision {
  const { token, state, connection } = snapshot;
  const usable = token !== undefined && isUsable(token, integration, now, request.minTtlSeconds);
  const renewable = canRenewUnattended(integration, token, connection.refreshToken);
  const inWindow = token !== undefined && isInRefreshWindow(token, integration, now);
  const inBackoff =
    state.status === "error" && state.nextRefreshAt !== null && state.nextRefreshAt > now;
  const use = (renewSoon = false): Decision => ({
    kind: "use",
    token: token as TokenSet,
    renewSoon,
  });

  // Is the request satisfied by what is held?
  switch (request.trigger) {
    case "manual":
    case "authorize":
      // A person asked for a new token (Refresh now, a connect link's password).
      if (token !== undefined && state.tokenVersion > (request.afterVersion ?? Infinity))
        return use();
      break;
    case "retry":
      if (usable && token.accessToken !== request.rejectedAccessToken) return use();
      break;
    case "schedule":
      // Keep-alive: an idle token is renewed before its window, so its refresh token lives.
      if (usable && !inWindow && !isKeepAliveDue(token, integration, now)) return use();
      break;
    default:
      if (usable && request.renewAhead === true) {
        if (!inWindow || !renewable || inBackoff || state.status === "needs_reauth") return use();
        break;
      }
      if (usable) {
        const healthy = state.status === "active" || state.status === "error";
        return use(inWindow && renewable && healthy && !inBackoff);
      }
  }

  // A renewal is wanted: is one possible, or is the answer an error?
  const id = connection.id;
  // session none: the token is served as it is (a refused call is not sent again).
  if (token !== undefined && integration.session === "none") return use();
  if (state.status === "pending_authorization" && token === undefined) {
    return fail("pending_authorization", `connection ${id} has not been authorized yet`);
  }
  if (state.status === "revoked" && !isUnattendedGrant(integration.grantType)) {
    return fail("needs_reauth", `connection ${id} was revoked; authorize it again`);
  }
  if (
    state.status === "needs_reauth" &&
    request.trigger !== "manual" &&
    request.trigger !== "authorize"
  ) {
    if (usable) return use();
    const why = state.lastError === null ? "" : `: ${state.lastError.message}`;
    return fail("needs_reauth", `connection ${id} needs to be authorized again${why}`);
  }
  if (!renewable) {
    if (usable) return use();
    return fail("needs_reauth", `connection ${id} has no refresh token; authorize it again`);
  }
  if ((request.trigger === "demand" || request.trigger === "retry") && inBackoff) {
    if (token !== undefined && (usable || request.trigger === "retry")) return use();
    return backingOff(state, now);
  }
  return { kind: "renew" };
}

function fail(code: ErrorCode, message: string): Decision {
  return { kind: "fail", error: new TokenwardenError(code, message) };
}

/** The last failure again, with when the next attempt is due (the service's Retry-After). */
function backingOff(state: ConnectionState, now: number): Decision {
  const retryAt = state.nextRefreshAt as number;
  const last = state.lastError;
  const error = new TokenwardenError(
    (last?.code ?? "network_error") as ErrorCode,
    `${last?.message ?? "the last attempt failed"} (next attempt at ${new Date(retryAt).toISOString()})`,
    {
      ...(last?.oauthError === undefined ? {} : { oauthError: last.oauthError }),
      ...(last?.oauthErrorDescription === undefined
        ? {}
        : { oauthErrorDescription: last.oauthErrorDescription }),
      ...(last?.status === undefined ? {} : { status: last.status }),
      retryAfterSeconds: Math.max(1, Math.ceil((retryAt - now) / 1000)),
    },
  );
  return { kind: "fail", error };
}
