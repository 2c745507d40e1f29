/**
 * Lifecycle events (PRODUCT.md "Lifecycle webhooks"): which ones a change of a
 * connection's status raises, and the body each is delivered with. Pure: the broker
 * calls it where it writes the change, inside the same transaction, and the outbox
 * row it writes is what the webhooks deliver.
 */
import type { ConnectionStatus, ErrorSummary } from "./connection.js";

export const LIFECYCLE_EVENT_TYPES = [
  "connection.authorized",
  "connection.needs_reauth",
  "connection.error",
  "connection.recovered",
  "connection.revoked",
  "connection.deleted",
  "connection.refresh_token_expiring",
] as const;
export type LifecycleEventType = (typeof LIFECYCLE_EVENT_TYPES)[number];

/** What caused a status write: a person's authorization is told apart from a recovery. */
export type TransitionCause = "authorize" | "renew" | "revoke" | "config" | "delete";

export interface Transition {
  previousStatus: ConnectionStatus | null;
  /** `null`: the connection is gone (deleted). */
  status: ConnectionStatus | null;
  cause: TransitionCause;
}

/**
 * The events a status write raises. A status written again (an `error` that keeps
 * failing) raises nothing: each event marks an edge, so an alert opens once and
 * `connection.recovered` closes it. A completed authorization is always
 * `connection.authorized`, even of a connection already active (a new account may
 * have been connected). Leaving `needs_reauth` for `active` by anything but an
 * authorization (a password grant starting over, a configuration fix) is a recovery
 * too: that alert also closes itself.
 */
export function eventsFor(t: Transition): LifecycleEventType[] {
  if (t.cause === "delete") return t.previousStatus === null ? [] : ["connection.deleted"];
  if (t.status === null) return [];
  if (t.cause === "authorize" && t.status === "active") return ["connection.authorized"];
  if (t.status === t.previousStatus) return [];
  switch (t.status) {
    case "needs_reauth":
      return ["connection.needs_reauth"];
    case "error":
      return ["connection.error"];
    case "revoked":
      return ["connection.revoked"];
    case "active":
      return t.previousStatus === "error" || t.previousStatus === "needs_reauth"
        ? ["connection.recovered"]
        : [];
    default:
      return [];
  }
}

export interface LifecycleSubject {
  connectionId: string;
  integration: string;
  environment: string;
}

/** The webhook body: never a secret or a token (ErrorSummary holds neither). */
export interface LifecycleEventBody {
  type: LifecycleEventType;
  /** ISO 8601. */
  timestamp: string;
  data: {
    connectionId: string;
    integration: string;
    environment: string;
    status: ConnectionStatus | null;
    previousStatus: ConnectionStatus | null;
    error?: { code: string; message: string; oauthError?: string; httpStatus?: number };
    /** `connection.refresh_token_expiring`: when it ends (ISO 8601). */
    refreshTokenExpiresAt?: string;
    /**
     * `connection.needs_reauth`: how to make a connect link for the person who must
     * authorize again. A request to make, not a link: a link in a body would let
     * whoever reads the body connect an account of their own in its place.
     */
    reconnect?: { method: "POST"; path: "/v1/connect-sessions"; body: { connectionId: string } };
  };
}

export function lifecycleBody(
  type: LifecycleEventType,
  subject: LifecycleSubject,
  t: Pick<Transition, "previousStatus" | "status">,
  now: number,
  extra: { error?: ErrorSummary | null; refreshTokenExpiresAt?: number } = {},
): LifecycleEventBody {
  const data: LifecycleEventBody["data"] = {
    connectionId: subject.connectionId,
    integration: subject.integration,
    environment: subject.environment,
    status: t.status,
    previousStatus: t.previousStatus,
  };
  const error = extra.error;
  if (error != null && (type === "connection.error" || type === "connection.needs_reauth")) {
    data.error = { code: error.code, message: error.message };
    if (error.oauthError !== undefined) data.error.oauthError = error.oauthError;
    if (error.status !== undefined) data.error.httpStatus = error.status;
  }
  if (extra.refreshTokenExpiresAt !== undefined)
    data.refreshTokenExpiresAt = new Date(extra.refreshTokenExpiresAt).toISOString();
  if (type === "connection.needs_reauth") {
    data.reconnect = {
      method: "POST",
      path: "/v1/connect-sessions",
      body: { connectionId: subject.connectionId },
    };
  }
  return { type, timestamp: new Date(now).toISOString(), data };
}
