/**
 * Keeps what each process caches about a connection (its token, its scope) and about
 * an integration (its connections' tokens, the discovery and protected resource
 * metadata it was prepared with) in step with the store: a change made here drops this
 * process's entries and is told to the others on the store's change channel
 * (`holderId|connection:<id>`, or `|integration:<key>`, for a change or a deletion); a
 * change told by another process drops ours. Telling is best effort: another process's
 * cached token still ends at its expiry, its documents at their max-age.
 */
import type { ChangeFeed } from "../store/store.js";
import type { ProtocolSupport } from "./protocol-support.js";
import type { ScopeCache } from "./scope-cache.js";
import type { TokenSource } from "./token-source.js";

export type ChangeTopic = `connection:${string}` | `integration:${string}`;

/** The caches a change empties: tokens (per connection and per integration), scopes, documents. */
export interface SyncedCaches {
  tokens: Pick<TokenSource, "forget" | "forgetIntegration" | "forgetAll">;
  scopes: Pick<ScopeCache, "forget" | "forgetAll">;
  protocol: Pick<ProtocolSupport, "forgetIntegration" | "forgetDiscovery">;
}

export class CacheSync {
  readonly #store: ChangeFeed;
  readonly #holderId: string;
  readonly #caches: SyncedCaches;
  #unsubscribe: (() => Promise<void>) | undefined;

  constructor(store: ChangeFeed, holderId: string, caches: SyncedCaches) {
    this.#store = store;
    this.#holderId = holderId;
    this.#caches = caches;
  }

  /** Starts hearing the other processes' changes (once, when the broker opens). */
  async subscribe(): Promise<void> {
    this.#unsubscribe = await this.#store.subscribeChanges(
      (message) => this.#onChange(message),
      // The channel was down (the database went away): what it missed is unknown.
      () => {
        this.#caches.tokens.forgetAll();
        this.#caches.scopes.forgetAll();
        this.#caches.protocol.forgetDiscovery();
      },
    );
  }

  /** A connection changed here: forget it, then tell the others. */
  async connectionChanged(id: string): Promise<void> {
    this.forgetConnection(id);
    await this.publish(`connection:${id}`);
  }

  /** Forgets a connection in this process only (before a change the others hear of). */
  forgetConnection(id: string): void {
    this.#caches.tokens.forget(id);
    this.#caches.scopes.forget(id);
  }

  /** An integration changed or was deleted here: forget what it cached, then tell the others. */
  async integrationChanged(key: string): Promise<void> {
    this.#forgetIntegration(key);
    await this.publish(`integration:${key}`);
  }

  /** Tells the other processes to drop what they cached about `topic`. */
  async publish(topic: ChangeTopic): Promise<void> {
    try {
      await this.#store.publishChange(`${this.#holderId}|${topic}`);
    } catch {
      // Best effort: other processes' caches still end at the token's expiry.
    }
  }

  async close(): Promise<void> {
    await this.#unsubscribe?.();
  }

  #onChange(message: string): void {
    const separator = message.indexOf("|");
    if (message.slice(0, separator) === this.#holderId) return;
    const topic = message.slice(separator + 1);
    if (topic.startsWith("connection:")) {
      this.forgetConnection(topic.slice("connection:".length));
    } else if (topic.startsWith("integration:")) {
      this.#forgetIntegration(topic.slice("integration:".length));
    }
  }

  #forgetIntegration(key: string): void {
    this.#caches.tokens.forgetIntegration(key);
    this.#caches.protocol.forgetIntegration(key);
  }
}
