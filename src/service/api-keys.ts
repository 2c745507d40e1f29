import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { ApiKeyRole, NewStoredApiKey, Store, StoredApiKey } from "../store/store.js";

/**
 * API keys for `/v1`. A key is 256 random bits, shown once; only its SHA-256 is
 * stored (a fast hash is right for a high-entropy key: there is nothing to guess).
 * Presented keys are hashed and compared with every known hash in constant time.
 */
export interface NewApiKey {
  id: string;
  name: string;
  /** The key itself: shown once, never stored. */
  key: string;
  hash: string;
}

/**
 * What a presented key may do (PRODUCT.md "Security rules" 2). `integrations` and
 * `environments` limit a client key; `null` is no limit.
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

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("base64url");
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

/** How long stored keys are trusted without looking again (keys made by the CLI appear). */
const RELOAD_MS = 5_000;

interface KnownKey {
  hash: Buffer;
  grant: ApiKeyGrant;
}

export class ApiKeyRing {
  readonly #store: Store;
  readonly #fixed: KnownKey[];
  #stored: KnownKey[] = [];
  #loadedAt = Number.NEGATIVE_INFINITY;
  #loading: Promise<void> | undefined;

  constructor(store: Store, fixedKeys: readonly string[]) {
    this.#store = store;
    // Keys from TOKENWARDEN_API_KEYS are admin keys: they could do everything before roles.
    this.#fixed = fixedKeys.map((k, i) => ({
      hash: Buffer.from(hashApiKey(k)),
      grant: { id: `env:${i}`, role: "admin", integrations: null, environments: null },
    }));
  }

  get hasFixedKeys(): boolean {
    return this.#fixed.length > 0;
  }

  /**
   * The key's grant, or `undefined` for an unknown key: at once when the answer is
   * known from memory (the common case, with no promise on the request path), as a
   * promise when the stored keys must be read first.
   */
  verify(presented: string): ApiKeyGrant | undefined | Promise<ApiKeyGrant | undefined> {
    const hash = Buffer.from(hashApiKey(presented));
    const fixed = this.#match(hash, this.#fixed);
    if (fixed !== undefined) return fixed;
    if (performance.now() - this.#loadedAt <= RELOAD_MS) {
      const stored = this.#match(hash, this.#stored);
      if (stored !== undefined) return stored;
    }
    return this.#verifyAfterReload(hash);
  }

  async #verifyAfterReload(hash: Buffer): Promise<ApiKeyGrant | undefined> {
    if (performance.now() - this.#loadedAt > RELOAD_MS) {
      try {
        await this.reload();
      } catch (error) {
        // The database is away: a key read before still opens the cached tokens it
        // served a moment ago; an unknown one gets the storage_error (503), not a 401.
        const known = this.#match(hash, this.#stored);
        if (known !== undefined) return known;
        throw error;
      }
    }
    const found = this.#match(hash, this.#stored);
    if (found !== undefined) return found;
    // An unknown key may be one just created by the CLI: look once more, at most
    // once a second, so a flood of bad keys cannot flood the database.
    if (performance.now() - this.#loadedAt > 1000) {
      await this.reload();
      return this.#match(hash, this.#stored);
    }
    return undefined;
  }

  async reload(): Promise<void> {
    this.#loading ??= this.#store
      .listApiKeys()
      .then((keys) => {
        this.#stored = keys.map((k) => ({ hash: Buffer.from(k.hash), grant: grantOf(k) }));
        this.#loadedAt = performance.now();
      })
      .finally(() => {
        this.#loading = undefined;
      });
    return this.#loading;
  }

  /** Every hash is compared, match or not, so timing tells nothing about which. */
  #match(hash: Buffer, known: readonly KnownKey[]): ApiKeyGrant | undefined {
    let found: ApiKeyGrant | undefined;
    for (const candidate of known) {
      if (candidate.hash.length === hash.length && timingSafeEqual(candidate.hash, hash))
        found = candidate.grant;
    }
    return found;
  }

  /**
   * On a first run with no key at all, creates one and returns it (to print once).
   * The service never runs open.
   */
  async ensureFirstKey(now: number): Promise<string | undefined> {
    if (this.#fixed.length > 0) return undefined;
    if ((await this.#store.listApiKeys()).length > 0) return undefined;
    const created = generateApiKey("first key");
    const stored: NewStoredApiKey = {
      id: created.id,
      name: created.name,
      hash: created.hash,
      role: "admin",
    };
    await this.#store.createApiKey(stored, now);
    await this.reload();
    return created.key;
  }
}

function grantOf(key: StoredApiKey): ApiKeyGrant {
  return key.role === "admin"
    ? { id: key.id, role: "admin", integrations: null, environments: null }
    : {
        id: key.id,
        role: "client",
        integrations: key.integrations,
        environments: key.environments,
      };
}
