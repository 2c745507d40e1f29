/**
 * API key material and grants: a key is 256 random bits, shown once; only its SHA-256
 * is stored (a fast hash is right for a high-entropy key: there is nothing to guess).
 * Pure functions, shared by the key store (api-keys.ts) and the ring (api-key-ring.ts).
 */
import { hash, randomBytes } from "node:crypto";
import type { ApiKeyRole, StoredApiKey } from "../store/store.js";

export interface NewApiKey {
  id: string;
  name: string;
  /** The key itself: shown once, never stored. */
  key: string;
  hash: string;
}

/**
 * What a presented key may do. `integrations` and `environments` limit a client key;
 * `null` is no limit.
 */
export interface ApiKeyGrant {
  id: string;
  role: ApiKeyRole;
  integrations: readonly string[] | null;
  environments: readonly string[] | null;
}

export function generateApiKey(name: string): NewApiKey {
  const id = randomBytes(6).toString("base64url");
  const key = `tw_${id}_${randomBytes(32).toString("base64url")}`;
  return { id, name, key, hash: hashApiKey(key) };
}

/** Runs on every request: the one-shot `hash` costs a fraction of a `Hash` object. */
export function hashApiKey(key: string): string {
  return hash("sha256", key, "base64url");
}

/** Whether a grant is limited at all: the token hot path skips the lookup when it is not. */
export function isLimited(grant: ApiKeyGrant): boolean {
  return grant.role !== "admin" && (grant.integrations !== null || grant.environments !== null);
}

/** Whether a connection of this integration and environment is within a grant's limits. */
export function allows(
  grant: ApiKeyGrant,
  scope: { integration: string; environment: string },
): boolean {
  if (grant.role === "admin") return true;
  if (grant.integrations !== null && !grant.integrations.includes(scope.integration)) return false;
  if (grant.environments !== null && !grant.environments.includes(scope.environment)) return false;
  return true;
}

export function grantOf(key: StoredApiKey): ApiKeyGrant {
  return key.role === "admin"
    ? { id: key.id, role: "admin", integrations: null, environments: null }
    : {
        id: key.id,
        role: "client",
        integrations: key.integrations,
        environments: key.environments,
      };
}
