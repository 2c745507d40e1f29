/**
 * One client registered (RFC 7591) per integration at an MCP server's authorization
 * server, however many authorizations start at once and however many processes share
 * the store: one flight per integration in a process, and across processes the lease
 * the store keeps for refreshes (lease.ts), under a key of its own. Whoever holds it
 * reads the stored client again before registering; whoever waited takes the client
 * the holder stored. Without this, two processes starting the first authorization
 * together would each register, and one of the two clients would be lost.
 */
import type { Clock } from "../core/clock.js";
import {
  clientMetadata,
  type RegisteredAuthMethod,
  type registerClient,
} from "../oauth/client-registration.js";
import type { TransportSettings } from "../oauth/http.js";
import type { LeaseStore, McpClient, McpClientStore } from "../store/store.js";
import { withLease } from "./lease.js";
import { SingleFlight } from "./single-flight.js";

export interface McpRegistrationDeps {
  store: McpClientStore & LeaseStore;
  clock: Clock;
  /** This process, as leases name it. */
  holderId: string;
  /** RFC 7591 registration (client-registration.ts), through the broker's HTTP client. */
  register: typeof registerClient;
}

/** What a client must be for an integration's authorization to use it. */
export interface WantedClient {
  integration: string;
  issuer: string;
  redirectUri: string;
}

export interface RegistrationRequest extends WantedClient {
  endpoint: string;
  authMethod: RegisteredAuthMethod;
  transport: TransportSettings;
}

/**
 * The lease's key: connection ids are letters, digits, `_` and `-` (ID_PATTERN), so
 * one with a `:` is never a connection's.
 */
export function registrationLeaseId(integration: string): string {
  return `mcp-registration:${integration}`;
}

/** A registered client of that server, for that redirect URL. */
export function fitsRegistered(
  client: McpClient | undefined,
  wanted: WantedClient,
): client is McpClient {
  return (
    client?.kind === "registered" &&
    client.issuer === wanted.issuer &&
    client.redirectUris.includes(wanted.redirectUri)
  );
}

/** Past the request's own timeout, the time a holder may take to store what it got. */
const LEASE_MARGIN_MS = 2000;

export class McpRegistrations {
  readonly #deps: McpRegistrationDeps;
  readonly #flights = new SingleFlight<string, McpClient>();

  constructor(deps: McpRegistrationDeps) {
    this.#deps = deps;
  }

  /** The stored client if it fits, else one registered now and stored. */
  registered(request: RegistrationRequest): Promise<McpClient> {
    const flight = JSON.stringify([request.integration, request.issuer, request.redirectUri]);
    return this.#flights.run(flight, () => this.#underLease(request));
  }

  async #underLease(request: RegistrationRequest): Promise<McpClient> {
    const { store, clock, holderId } = this.#deps;
    const stored = async () => {
      const client = await store.getMcpClient(request.integration);
      return fitsRegistered(client, request) ? client : undefined;
    };
    const outcome = await withLease(
      { store, clock, holderId },
      registrationLeaseId(request.integration),
      request.transport.timeoutMs + LEASE_MARGIN_MS,
      async () => (await stored()) !== undefined,
      async () => (await stored()) ?? (await this.#register(request)),
      `register a client for integration ${request.integration}`,
    );
    if (outcome.claimed) return outcome.value;
    // Another holder stored a client that fits while this one waited.
    const client = await stored();
    if (client !== undefined) return client;
    return this.#underLease(request);
  }

  async #register(request: RegistrationRequest): Promise<McpClient> {
    const { store, clock, register } = this.#deps;
    const registered = await register(
      request.endpoint,
      clientMetadata(request.redirectUri, request.authMethod),
      request.transport,
    );
    const client: McpClient = {
      issuer: request.issuer,
      clientId: registered.clientId,
      kind: "registered",
      clientAuth: registered.clientAuth,
      clientSecret: registered.clientSecret,
      redirectUris: [request.redirectUri],
    };
    await store.putMcpClient(request.integration, client, clock.now());
    return client;
  }
}
