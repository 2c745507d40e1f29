/**
 * What the broker adds to a resolved integration before speaking to its server:
 * the endpoints and metadata discovery finds (its own fields win), and the memory of
 * which client authentication `auto` found accepted, kept in the store per
 * integration so every process starts with it. The documents an integration was
 * prepared with are remembered by its key, so that a change to it (here or told by
 * another process, cache-sync.ts) makes the next request read them again.
 */
import type { Clock } from "../core/clock.js";
import { CLIENT_AUTH_METHODS } from "../core/integration.js";
import type { ResolvedIntegration } from "../core/resolve.js";
import { withServerMetadata } from "../core/server-metadata.js";
import type { ClientAuthMemory } from "../oauth/auto-auth.js";
import type { ConcreteClientAuthMethod } from "../oauth/client-auth.js";
import { registerClient } from "../oauth/client-registration.js";
import { discoverServer } from "../oauth/discovery.js";
import type { HttpClient } from "../oauth/http.js";
import { obtainProtectedResourceMetadata } from "../oauth/protected-resource.js";
import type { ProtocolOptions } from "../oauth/token-endpoint.js";
import type { LearnedClientAuthStore, LeaseStore, McpClientStore } from "../store/store.js";
import { type Discover, DiscoveryCache } from "./discovery-cache.js";
import { type AuthorizationStartOptions, McpServers } from "./mcp-servers.js";

export interface ProtocolSupportSettings {
  store: LearnedClientAuthStore & McpClientStore & LeaseStore;
  clock: Clock;
  http: HttpClient;
  holderId: string;
}

export class ProtocolSupport {
  readonly #store: LearnedClientAuthStore;
  readonly #clock: Clock;
  readonly #http: HttpClient;
  readonly #discovery: DiscoveryCache;
  readonly #mcp: McpServers;
  /** The discovery URLs each integration was prepared with, and whether through an MCP server. */
  readonly #used = new Map<string, { urls: Set<string>; mcp: boolean }>();

  /**
   * `http` is the broker's client: discovery and every protocol call go through its
   * pools. `holderId` names this process in the leases an MCP client's registration
   * holds.
   */
  constructor(settings: ProtocolSupportSettings, discover?: Discover) {
    const { store, clock, http, holderId } = settings;
    this.#store = store;
    this.#clock = clock;
    this.#http = http;
    const discovery = new DiscoveryCache(
      clock,
      discover ?? ((url, transport) => discoverServer(url, transport, { http })),
    );
    this.#discovery = discovery;
    this.#mcp = new McpServers({
      store,
      clock,
      holderId,
      obtain: (url, transport) => obtainProtectedResourceMetadata(url, transport, { http }),
      serverMetadata: (url, transport) => discovery.metadata(url, transport),
      register: (endpoint, metadata, transport) =>
        registerClient(endpoint, metadata, transport, { http }),
    });
  }

  /**
   * The integration with what its discovery URL (or its MCP server) says filled in.
   * `start`: an authorization is starting, the one moment an MCP server's client may
   * be chosen or registered (mcp-servers.ts).
   */
  async prepare(
    resolved: ResolvedIntegration,
    start?: AuthorizationStartOptions,
  ): Promise<ResolvedIntegration> {
    const mcpServerUrl = resolved.mcpServerUrl;
    if (mcpServerUrl !== undefined) {
      // Noted first: a failure halfway may still have cached the resource's document.
      this.#usedBy(resolved.key, resolved.discoveryUrl, true);
      const prepared = await this.#mcp.prepare({ ...resolved, mcpServerUrl }, start);
      this.#usedBy(resolved.key, prepared.discoveryUrl, true);
      return prepared;
    }
    if (resolved.discoveryUrl === undefined) return resolved;
    this.#usedBy(resolved.key, resolved.discoveryUrl, false);
    const metadata = await this.#discovery.metadata(resolved.discoveryUrl, resolved);
    return withServerMetadata(resolved, metadata);
  }

  /** Options for the protocol client's calls on behalf of this integration. */
  options(resolved: ResolvedIntegration): ProtocolOptions {
    const base = { clock: this.#clock, http: this.#http };
    if (resolved.clientAuth !== "auto") return base;
    return { ...base, clientAuthMemory: this.#memory(resolved) };
  }

  /** Forgets every document read (this process may have missed changes). */
  forgetDiscovery(): void {
    this.#discovery.clear();
    this.#mcp.forget();
    this.#used.clear();
  }

  /**
   * Forgets the documents integration `key` was prepared with (it changed or is gone):
   * its authorization server's metadata and, for an MCP server, the protected resource
   * metadata (those are kept together, so all of them go).
   */
  forgetIntegration(key: string): void {
    const used = this.#used.get(key);
    if (used === undefined) return;
    this.#used.delete(key);
    for (const url of used.urls) this.#discovery.forget(url);
    if (used.mcp) this.#mcp.forget();
  }

  #usedBy(key: string, discoveryUrl: string | undefined, mcp: boolean): void {
    let used = this.#used.get(key);
    if (used === undefined) {
      used = { urls: new Set(), mcp };
      this.#used.set(key, used);
    }
    if (discoveryUrl !== undefined) used.urls.add(discoveryUrl);
    used.mcp ||= mcp;
  }

  #memory(resolved: ResolvedIntegration): ClientAuthMemory {
    const store = this.#store;
    const clock = this.#clock;
    // Learned for this token endpoint: a move makes it unknown again.
    const tokenUrl = resolved.tokenUrl ?? "";
    const integration = resolved.key;
    return {
      async get() {
        const learned = await store.getLearnedClientAuth(integration);
        if (learned === undefined || learned.tokenUrl !== tokenUrl) return undefined;
        return isConcrete(learned.method) ? learned.method : undefined;
      },
      async set(method) {
        try {
          await store.putLearnedClientAuth(integration, { tokenUrl, method }, clock.now());
        } catch {
          // A memory, not a requirement: the next request tries again from the start.
        }
      },
    };
  }
}

function isConcrete(method: string): method is ConcreteClientAuthMethod {
  return method !== "auto" && (CLIENT_AUTH_METHODS as readonly string[]).includes(method);
}
