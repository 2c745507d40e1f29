/**
 * Which integration and environment each connection belongs to, for API key limits
 * (a client key limited to `acme`/`prod`). Read on the token path, so kept in memory;
 * forgotten when the connection changes here or in another process, and looked up
 * again after a few seconds anyway (SQLite has no channel to hear of a change made by
 * the CLI).
 */
import type { ConfigurationStore } from "../store/store.js";

export interface ConnectionScope {
  integration: string;
  environment: string;
}

const TTL_MS = 5_000;

export class ScopeCache {
  readonly #load: (id: string) => Promise<ConnectionScope | undefined>;
  readonly #entries = new Map<string, { scope: ConnectionScope; at: number }>();

  constructor(load: (id: string) => Promise<ConnectionScope | undefined>) {
    this.#load = load;
  }

  /** Scopes read from the connections in `store`. */
  static over(store: Pick<ConfigurationStore, "getConnection">): ScopeCache {
    return new ScopeCache(async (id) => {
      const stored = await store.getConnection(id);
      return stored === undefined
        ? undefined
        : {
            integration: stored.connection.integration,
            environment: stored.connection.environment,
          };
    });
  }

  async get(id: string): Promise<ConnectionScope | undefined> {
    const known = this.#entries.get(id);
    if (known !== undefined && performance.now() - known.at <= TTL_MS) return known.scope;
    const scope = await this.#load(id);
    if (scope === undefined) this.#entries.delete(id);
    else this.#entries.set(id, { scope, at: performance.now() });
    return scope;
  }

  forget(id: string): void {
    this.#entries.delete(id);
  }

  forgetAll(): void {
    this.#entries.clear();
  }
}
