/**
 * What the outside world sees of stored things: secrets are write-only, shown only
 * as `{ set: true | false }`. Every adapter (library, service, CLI, admin page)
 * returns these views and nothing else.
 */
import type { Connection, ConnectionState, ErrorSummary } from "../core/connection.js";
import type { Integration } from "../core/integration.js";
import { INTEGRATION_SECRET_PATHS, secretFlags } from "../core/secrets.js";
import { fillTokenTemplate } from "../core/template.js";
import type { TokenSet } from "../core/token-set.js";
import type { ConnectionSummary, StoredIntegration } from "../store/store.js";

export interface SecretFlag {
  set: boolean;
}

export type IntegrationView = Omit<Integration, "clientSecret" | "tls" | "clientPrivateKey"> & {
  clientSecret: SecretFlag;
  clientPrivateKey: SecretFlag;
  tls: Omit<Integration["tls"], "key"> & { key: SecretFlag };
  createdAt: string;
  updatedAt: string;
};

export type ConnectionView = Omit<
  Connection,
  "clientSecret" | "password" | "refreshToken" | "subjectToken"
> & {
  clientSecret: SecretFlag;
  subjectToken: SecretFlag;
  password: SecretFlag;
  refreshToken: SecretFlag;
  status: ConnectionState["status"];
  expiresAt: string | null;
  scope: string | null;
  lastRefreshAt: string | null;
  nextRefreshAt: string | null;
  /** When the refresh token ends, if the server said (`refresh_token_expires_in`). */
  refreshTokenExpiresAt: string | null;
  lastError: (Omit<ErrorSummary, "at"> & { at: string }) | null;
  createdAt: string;
  updatedAt: string;
};

/**
 * A token ready to use: `header` is what to send. `extra` holds every other field of
 * the server's response (Salesforce's `instance_url`, an `id_token`), never the
 * refresh token.
 */
export interface AccessToken {
  accessToken: string;
  tokenType: string;
  expiresAt: string | null;
  scope: string | null;
  header: { name: string; value: string };
  extra: Record<string, unknown>;
}

/** Fields of a token response that `AccessToken` already carries, or must never carry. */
const STANDARD_FIELDS = ["access_token", "token_type", "expires_in", "refresh_token", "scope"];

export function integrationView(stored: StoredIntegration): IntegrationView {
  // Every secret path becomes { set }, so a private key added to the list is hidden too.
  const flagged = secretFlags(stored.integration, INTEGRATION_SECRET_PATHS);
  return {
    ...(flagged as unknown as Omit<IntegrationView, "createdAt" | "updatedAt">),
    createdAt: iso(stored.createdAt),
    updatedAt: iso(stored.updatedAt),
  };
}

export function connectionView(summary: ConnectionSummary): ConnectionView {
  const { clientSecret, password, refreshToken, subjectToken, ...rest } = summary.connection;
  const { state } = summary;
  return {
    ...rest,
    clientSecret: { set: clientSecret !== undefined },
    password: { set: password !== undefined },
    refreshToken: { set: refreshToken !== undefined },
    subjectToken: { set: subjectToken !== undefined },
    status: state.status,
    expiresAt: isoOrNull(state.expiresAt),
    scope: state.scope,
    lastRefreshAt: isoOrNull(state.lastRefreshAt),
    nextRefreshAt: isoOrNull(state.nextRefreshAt),
    refreshTokenExpiresAt: isoOrNull(state.refreshTokenExpiresAt ?? null),
    lastError:
      state.lastError === null ? null : { ...state.lastError, at: iso(state.lastError.at) },
    createdAt: iso(summary.createdAt),
    updatedAt: iso(summary.updatedAt),
  };
}

/** Fills `{token}` into the placement template. */
export function accessTokenView(
  token: TokenSet,
  settings: Pick<Integration, "tokenPlacement" | "responseMap">,
): AccessToken {
  const placement = settings.tokenPlacement;
  // RFC 9449 §7.1: a DPoP-bound token is sent with the DPoP scheme (and a proof).
  const template =
    token.dpopKey === undefined
      ? placement.template
      : placement.template.replace(/^Bearer /i, "DPoP ");
  const value = fillTokenTemplate(template, token.accessToken);
  return {
    accessToken: token.accessToken,
    tokenType: token.dpopKey === undefined ? token.tokenType : "DPoP",
    expiresAt: isoOrNull(token.expiresAt),
    scope: token.scope ?? null,
    extra: extraFields(token.raw, settings.responseMap),
    header:
      placement.in === "header"
        ? { name: placement.name, value }
        : {
            name: "Authorization",
            value: `${token.dpopKey === undefined ? token.tokenType : "DPoP"} ${token.accessToken}`,
          },
  };
}

/**
 * The response without the fields the view already has, and without the refresh
 * token wherever `responseMap` says the server puts it.
 */
function extraFields(
  raw: Record<string, unknown>,
  map: Integration["responseMap"],
): Record<string, unknown> {
  const extra = structuredClone(raw);
  for (const field of STANDARD_FIELDS) delete extra[field];
  if (map.refreshToken !== undefined) deletePath(extra, map.refreshToken);
  if (map.accessToken !== undefined) deletePath(extra, map.accessToken);
  return extra;
}

function deletePath(body: Record<string, unknown>, path: string): void {
  if (path in body) {
    delete body[path];
    return;
  }
  const parts = path.split(".");
  let current: unknown = body;
  for (const part of parts.slice(0, -1)) {
    if (current === null || typeof current !== "object") return;
    current = (current as Record<string, unknown>)[part];
  }
  if (current !== null && typeof current === "object")
    delete (current as Record<string, unknown>)[parts.at(-1) as string];
}

/** The largest time a Date holds (ECMA-262 §21.4.1.1). */
const MAX_DATE_MS = 8.64e15;

/**
 * A stored time as ISO 8601. A view never throws: a number out of a Date's range
 * (stored by an older version, or by hand) shows as the nearest representable time,
 * and one that is not a number at all as the epoch.
 */
function iso(ms: number): string {
  const n = Number(ms);
  const bounded = Number.isNaN(n) ? 0 : Math.max(-MAX_DATE_MS, Math.min(MAX_DATE_MS, n));
  return new Date(bounded).toISOString();
}

function isoOrNull(ms: number | null): string | null {
  return ms === null || Number.isNaN(Number(ms)) ? null : iso(ms);
}
