/**
 * Checks presented API keys (api-keys.ts) on every request: hashed, then compared with
 * every known hash in constant time. Stored keys are kept in memory and read again
 * now and then, so a key made by the CLI works without a restart and the common case
 * costs no database read and no promise.
 */
import { timingSafeEqual } from "node:crypto";
import type { NewStoredApiKey, Store } from "../store/store.js";
import { type ApiKeyGrant, generateApiKey, grantOf, hashApiKey } from "./api-key-grants.js";

/** How long stored keys are trusted without looking again (keys made by the CLI appear). */
const RELOAD_MS = 5_000;

interface KnownKey {
  hash: Buffer;
  grant: ApiKeyGrant;
}

/** The key a caller presented last, and where its grant was found. */
interface Remembered {
  presented: string;
  grant: ApiKeyGrant;
  /** `#fixed`, or the `#stored` list of the load it was found in. */
  from: readonly KnownKey[];
}

export class ApiKeyRing {
  readonly #store: Pick<Store, "createApiKey" | "listApiKeys">;
  readonly #fixed: KnownKey[];
  #stored: KnownKey[] = [];
  #loadedAt = Number.NEGATIVE_INFINITY;
  #loading: Promise<void> | undefined;
  /**
   * Per caller (`holder`: a keep-alive connection), the key it presented last: a
   * client sends the same key on every request, and comparing it with the one
   * remembered costs far less than hashing it again (a third of a token read's cost).
   */
  readonly #remembered = new WeakMap<object, Remembered>();

  constructor(store: Pick<Store, "createApiKey" | "listApiKeys">, fixedKeys: readonly string[]) {
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
  verify(
    presented: string,
    holder?: object,
  ): ApiKeyGrant | undefined | Promise<ApiKeyGrant | undefined> {
    const remembered = this.#recall(presented, holder);
    if (remembered !== undefined) return remembered;
    const hash = Buffer.from(hashApiKey(presented));
    return this.#fromMemory(presented, hash, holder) ?? this.#verifyAfterReload(hash);
  }

  /**
   * `verify` when memory answers it now: the grant of a known key, `undefined` for a
   * key that is unknown or would need the stored keys read again (ask `verify` then).
   * `holder` is what carries one caller's requests (its connection): the key it
   * presented last is remembered there, and the same key again is not hashed again.
   */
  knownGrant(presented: string, holder?: object): ApiKeyGrant | undefined {
    return (
      this.#recall(presented, holder) ??
      this.#fromMemory(presented, Buffer.from(hashApiKey(presented)), holder)
    );
  }

  /** The holder's last key's grant, if this is that key and the grant still stands. */
  #recall(presented: string, holder: object | undefined): ApiKeyGrant | undefined {
    if (holder === undefined) return undefined;
    const remembered = this.#remembered.get(holder);
    if (remembered === undefined || !sameKey(remembered.presented, presented)) return undefined;
    // A stored key stands while the load it was found in is the current one and fresh:
    // a key deleted by the CLI stops working at the next load, remembered or not.
    const stands =
      remembered.from === this.#fixed ||
      (remembered.from === this.#stored && performance.now() - this.#loadedAt <= RELOAD_MS);
    return stands ? remembered.grant : undefined;
  }

  #fromMemory(presented: string, hash: Buffer, holder?: object): ApiKeyGrant | undefined {
    let from: readonly KnownKey[] = this.#fixed;
    let grant = this.#match(hash, from);
    if (grant === undefined) {
      if (performance.now() - this.#loadedAt > RELOAD_MS) return undefined;
      from = this.#stored;
      grant = this.#match(hash, from);
    }
    if (grant !== undefined && holder !== undefined)
      this.#remembered.set(holder, { presented, grant, from });
    return grant;
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

/**
 * Whether two keys are equal, in time that depends on their length only: the key
 * remembered on a connection may be another caller's when a proxy in front shares
 * its connections, so how far two keys agree must not show in the time taken.
 */
function sameKey(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}
