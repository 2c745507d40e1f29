/**
 * A connection read for renewing: its row and its integration, resolved for it, and
 * the DPoP key its next request proves. Shared by every path that obtains a token
 * (renewer.ts, the authorization and device flows).
 */
import { TokenwardenError } from "../core/errors.js";
import type { Integration } from "../core/integration.js";
import { type ResolvedIntegration, resolveIntegration } from "../core/resolve.js";
import type { TokenSet } from "../core/token-set.js";
import { type DpopContext, type DpopNonces, generateDpopKey } from "../oauth/dpop.js";
import type { ConfigurationStore, StoredConnection } from "../store/store.js";

/** A connection as stored, with its integration, resolved for it. */
export interface Loaded {
  stored: StoredConnection;
  integration: Integration;
  resolved: ResolvedIntegration;
}

export async function loadConnection(store: ConfigurationStore, id: string): Promise<Loaded> {
  const stored = await store.getConnection(id);
  if (stored === undefined) throw connectionNotFound(id);
  const storedIntegration = await store.getIntegration(stored.connection.integration);
  if (storedIntegration === undefined) {
    throw new TokenwardenError(
      "not_found",
      `integration ${stored.connection.integration} does not exist`,
    );
  }
  const integration = storedIntegration.integration;
  return { stored, integration, resolved: resolveIntegration(integration, stored.connection) };
}

export function connectionNotFound(id: string): TokenwardenError {
  return new TokenwardenError("not_found", `connection ${id} does not exist`);
}

/**
 * The DPoP key a connection's next request proves: the one its tokens are bound to,
 * or a new one when it holds none yet. `undefined` when the integration does not use DPoP.
 */
export async function dpopFor(
  integration: Pick<Integration, "dpop">,
  token: TokenSet | undefined,
  nonces: DpopNonces,
): Promise<DpopContext | undefined> {
  if (integration.dpop !== true) return undefined;
  return { key: token?.dpopKey ?? (await generateDpopKey()), nonces };
}

/** The token set with the key it is bound to, for the sealed store. */
export function boundTo(token: TokenSet, dpop: DpopContext | undefined): TokenSet {
  return dpop === undefined ? token : { ...token, dpopKey: dpop.key };
}
