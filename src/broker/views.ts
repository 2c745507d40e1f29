import type { Connection, ConnectionState, ErrorSummary } from "../core/connection.js";
import type { Integration } from "../core/integration.js";
import { INTEGRATION_SECRET_PATHS, secretFlags } from "../core/secrets.js";
import type { TokenSet } from "../core/token-set.js";
import type { ConnectionSummary, StoredIntegration } from "../store/store.js";

/**
 * What the outside world sees of stored things: secrets are write-only, shown only
 * as `{ set: true | false }`. Every adapter (library, service, CLI, admin page)
 * returns these views and nothing else.
 */
export interface SecretFlag {
  set: boolean;
}

export type IntegrationView = Omit<Integration, "clientSecret" | "tls"> & {
  clientSecret: SecretFlag;
  tls: Omit<Integration["tls"], "key"> & { key: SecretFlag };
  createdAt: string;
  updatedAt: string;
};

export type ConnectionView = Omit<Connection, "clientSecret" | "password" | "refreshToken"> & {
  clientSecret: SecretFlag;
  password: SecretFlag;
  refreshToken: SecretFlag;
  status: ConnectionState["status"];
  expiresAt: string | null;
  scope: string | null;
  lastRefreshAt: string | null;
  nextRefreshAt: string | null;
  lastError: (Omit<ErrorSummary, "at"> & { at: string }) | null;
  createdAt: string;
  updatedAt: string;
};

/** A token ready to use: `header` is what to send (PRODUCT.md's token route). */
export interface AccessToken {
  accessToken: string;
  tokenType: string;
  expiresAt: string | null;
  scope: string | null;
  header: { name: string; value: string };
}

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
  const { clientSecret, password, refreshToken, ...rest } = summary.connection;
  const { state } = summary;
  return {
    ...rest,
    clientSecret: { set: clientSecret !== undefined },
    password: { set: password !== undefined },
    refreshToken: { set: refreshToken !== undefined },
    status: state.status,
    expiresAt: isoOrNull(state.expiresAt),
    scope: state.scope,
    lastRefreshAt: isoOrNull(state.lastRefreshAt),
    nextRefreshAt: isoOrNull(state.nextRefreshAt),
    lastError:
      state.lastError === null ? null : { ...state.lastError, at: iso(state.lastError.at) },
    createdAt: iso(summary.createdAt),
    updatedAt: iso(summary.updatedAt),
  };
}

/** Fills `{token}` into the placement template. */
export function accessTokenView(
  token: TokenSet,
  placement: Integration["tokenPlacement"],
): AccessToken {
  const value = placement.template.replaceAll("{token}", token.accessToken);
  return {
    accessToken: token.accessToken,
    tokenType: token.tokenType,
    expiresAt: isoOrNull(token.expiresAt),
    scope: token.scope ?? null,
    header:
      placement.in === "header"
        ? { name: placement.name, value }
        : { name: "Authorization", value: `${token.tokenType} ${token.accessToken}` },
  };
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
