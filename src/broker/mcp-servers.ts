/**
 * Acting as the client of a remote MCP server (`mcpServerUrl`). The server's
 * protected resource metadata (RFC 9728) names its authorization server, whose own
 * metadata (RFC 8414) fills the endpoints; the server is the token's resource and the
 * API, and its scopes the default ones. The client is, in this order: the
 * integration's (or connection's) `clientId`; a client ID metadata document served by
 * the service, when the authorization server takes them and the document's URL is
 * https; a client registered at the server (RFC 7591), once per integration across
 * processes (mcp-registration.ts), kept in the store with its secret sealed and
 * reused. Which one was used is kept too, so the callback, refreshes and revocation
 * speak as the same client as the authorization did.
 */

import type { Clock } from "../core/clock.js";
import { TokenwardenError } from "../core/errors.js";
import { CLIENT_AUTH_METHODS, type ClientAuthMethod } from "../core/integration.js";
import { MCP_CLIENT_TO_FIND, type ResolvedIntegration } from "../core/resolve.js";
import { type ServerMetadata, withServerMetadata } from "../core/server-metadata.js";
import {
  isClientMetadataDocumentUrl,
  type registerClient,
  registrationAuthMethod,
} from "../oauth/client-registration.js";
import type { TransportSettings } from "../oauth/http.js";
import type {
  ObtainedResourceMetadata,
  ProtectedResourceMetadata,
} from "../oauth/protected-resource.js";
import type { LeaseStore, McpClient, McpClientStore } from "../store/store.js";
import { DiscoveryCache } from "./discovery-cache.js";
import { fitsRegistered, McpRegistrations } from "./mcp-registration.js";

/** What starting an authorization brings that later steps do not know. */
export interface AuthorizationStartOptions {
  redirectUri: string;
  /**
   * Where the service serves its client ID metadata document
   * (`<publicUrl>/oauth/client-metadata.json`); without it, or not https, a client is
   * registered instead.
   */
  clientMetadataUrl?: string;
}

export type ObtainResourceMetadata = (
  resource: string,
  transport: TransportSettings,
) => Promise<ObtainedResourceMetadata>;

export type ServerMetadataOf = (
  discoveryUrl: string,
  transport: TransportSettings,
) => Promise<ServerMetadata>;

interface McpServersDeps {
  store: McpClientStore & LeaseStore;
  clock: Clock;
  /** This process, as leases name it (a registration holds one: mcp-registration.ts). */
  holderId: string;
  obtain: ObtainResourceMetadata;
  serverMetadata: ServerMetadataOf;
  /** RFC 7591 registration (client-registration.ts), through the broker's HTTP client. */
  register: typeof registerClient;
}

export class McpServers {
  readonly #deps: McpServersDeps;
  readonly #resources: DiscoveryCache<
    ProtectedResourceMetadata & { authorization_servers: string[] }
  >;
  /** One registration per integration, across this process and the others. */
  readonly #registrations: McpRegistrations;

  constructor(deps: McpServersDeps) {
    this.#deps = deps;
    this.#resources = new DiscoveryCache(deps.clock, deps.obtain);
    this.#registrations = new McpRegistrations(deps);
  }

  /**
   * The integration with its MCP server's authorization server and client filled in.
   * `start` is given when an authorization starts: only then may a client be chosen
   * or registered; otherwise the one chosen then is used.
   */
  async prepare(
    resolved: ResolvedIntegration & { mcpServerUrl: string },
    start?: AuthorizationStartOptions,
  ): Promise<ResolvedIntegration> {
    const resource = await this.#resources.metadata(resolved.mcpServerUrl, resolved);
    // The integration's own discovery URL wins, as its other fields do.
    const discoveryUrl = resolved.discoveryUrl ?? (resource.authorization_servers[0] as string);
    const server = await this.#deps.serverMetadata(discoveryUrl, resolved);
    const filled = withServerMetadata({ ...resolved, discoveryUrl }, server);
    const scopes =
      filled.scopes.length > 0 ? filled.scopes : [...(resource.scopes_supported ?? [])];
    const prepared = { ...filled, scopes };
    if (resolved.clientId !== MCP_CLIENT_TO_FIND) return prepared;
    const client = await this.#client(resolved.key, server, resolved, start);
    return {
      ...prepared,
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      clientAuth: asClientAuth(client.clientAuth),
    };
  }

  forget(): void {
    this.#resources.clear();
  }

  async #client(
    integration: string,
    server: ServerMetadata,
    transport: TransportSettings,
    start: AuthorizationStartOptions | undefined,
  ): Promise<McpClient> {
    const { store, clock } = this.#deps;
    const stored = await store.getMcpClient(integration);
    const sameServer = stored !== undefined && stored.issuer === server.issuer;
    if (start === undefined) {
      if (stored !== undefined && sameServer) return stored;
      throw new TokenwardenError(
        "invalid_config",
        `clientId: integration ${integration} has no client at ${server.issuer} yet: authorize a connection again`,
        { field: "clientId" },
      );
    }
    const { redirectUri, clientMetadataUrl } = start;
    const documents = server.client_id_metadata_document_supported === true;
    if (
      documents &&
      clientMetadataUrl !== undefined &&
      isClientMetadataDocumentUrl(clientMetadataUrl)
    ) {
      const client: McpClient = {
        issuer: server.issuer,
        clientId: clientMetadataUrl,
        kind: "document",
        clientAuth: "none",
        clientSecret: undefined,
        redirectUris: [redirectUri],
      };
      const unchanged =
        stored?.kind === "document" &&
        sameServer &&
        stored.clientId === clientMetadataUrl &&
        stored.redirectUris.includes(redirectUri);
      if (!unchanged) await store.putMcpClient(integration, client, clock.now());
      return client;
    }
    if (fitsRegistered(stored, { integration, issuer: server.issuer, redirectUri })) {
      return stored;
    }
    const endpoint = server.registration_endpoint;
    if (endpoint === undefined) {
      const why =
        documents && clientMetadataUrl !== undefined
          ? ` and client ID metadata documents need an https URL (the service's public URL is ${new URL(clientMetadataUrl).origin})`
          : documents
            ? " and client ID metadata documents need the service (its public URL)"
            : "";
      throw new TokenwardenError(
        "invalid_config",
        `clientId: ${server.issuer} takes no dynamic client registration (RFC 7591)${why}: set clientId`,
        { field: "clientId" },
      );
    }
    return this.#registrations.registered({
      integration,
      issuer: server.issuer,
      redirectUri,
      endpoint,
      authMethod: registrationAuthMethod(server.token_endpoint_auth_methods_supported),
      transport,
    });
  }
}

function asClientAuth(method: string): ClientAuthMethod {
  return (CLIENT_AUTH_METHODS as readonly string[]).includes(method)
    ? (method as ClientAuthMethod)
    : "basic";
}
