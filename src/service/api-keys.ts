import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Store } from "../store/store.js";

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

export function generateApiKey(name: string): NewApiKey {
  const id = randomBytes(6).toString("base64url");
  const key = `tw_${id}_${randomBytes(32).toString("base64url")}`;
  return { id, name, key, hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("base64url");
}

/** How long stored keys are trusted without looking again (keys made by the CLI appear). */
const RELOAD_MS = 5_000;

export class ApiKeyRing {
  readonly #store: Store;
  readonly #fixed: Buffer[];
  #stored: Buffer[] = [];
  #loadedAt = Number.NEGATIVE_INFINITY;
  #loading: Promise<void> | undefined;

  constructor(store: Store, fixedKeys: readonly string[]) {
    this.#store = store;
    this.#fixed = fixedKeys.map((k) => Buffer.from(hashApiKey(k)));
  }

  get hasFixedKeys(): boolean {
    return this.#fixed.length > 0;
  }

  /**
   * A boolean when the answer is known from memory (the common case, with no promise
   * on the request path), a promise when the stored keys must be read first.
   */
  verify(presented: string): boolean | Promise<boolean> {
    const hash = Buffer.from(hashApiKey(presented));
    if (this.#matches(hash, this.#fixed)) return true;
    if (performance.now() - this.#loadedAt <= RELOAD_MS && this.#matches(hash, this.#stored))
      return true;
    return this.#verifyAfterReload(hash);
  }

  async #verifyAfterReload(hash: Buffer): Promise<boolean> {
    if (performance.now() - this.#loadedAt > RELOAD_MS) {
      try {
        await this.reload();
      } catch (error) {
        // The database is away: a key read before still opens the cached tokens it
        // served a moment ago; an unknown one gets the storage_error (503), not a 401.
        if (this.#matches(hash, this.#stored)) return true;
        throw error;
      }
    }
    if (this.#matches(hash, this.#stored)) return true;
    // An unknown key may be one just created by the CLI: look once more, at most
    // once a second, so a flood of bad keys cannot flood the database.
    if (performance.now() - this.#loadedAt > 1000) {
      await this.reload();
      return this.#matches(hash, this.#stored);
    }
    return false;
  }

  async reload(): Promise<void> {
    this.#loading ??= this.#store
      .listApiKeys()
      .then((keys) => {
        this.#stored = keys.map((k) => Buffer.from(k.hash));
        this.#loadedAt = performance.now();
      })
      .finally(() => {
        this.#loading = undefined;
      });
    return this.#loading;
  }

  /** Every hash is compared, match or not, so timing tells nothing about which. */
  #matches(hash: Buffer, known: readonly Buffer[]): boolean {
    let found = false;
    for (const candidate of known) {
      if (candidate.length === hash.length && timingSafeEqual(candidate, hash)) found = true;
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
    await this.#store.createApiKey({ id: created.id, name: created.name, hash: created.hash }, now);
    await this.reload();
    return created.key;
  }
}
