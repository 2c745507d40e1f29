/**
 * What the broker adds to a resolved integration before speaking to its server:
 * the endpoints and metadata discovery finds (its own fields win), and the memory of
 * which client authentication `auto` found accepted, kept in the store per
 * integration so every process starts with it.
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
    if (mcpServerUrl !== undefined) return this.#mcp.prepare({ ...resolved, mcpServerUrl }, start);
    if (resolved.discoveryUrl === undefined) return resolved;
    const metadata = await this.#discovery.metadata(resolved.discoveryUrl, resolved);
    return withServerMetadata(resolved, metadata);
  }

  /** Options for the protocol client's calls on behalf of this integration. */
  options(resolved: ResolvedIntegration): ProtocolOptions {
    const base = { clock: this.#clock, http: this.#http };
    if (resolved.clientAuth !== "auto") return base;
    return { ...base, clientAuthMemory: this.#memory(resolved) };
  }

  forgetDiscovery(): void {
    this.#discovery.clear();
    this.#mcp.forget();
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
