/**
 * What a command may ask of Tokenwarden, whichever side answers: the database through
 * the broker in this process (local.ts), or a running service through its REST API
 * (remote.ts, when TOKENWARDEN_URL is set). Each command is written once against this;
 * a new command that needs a new operation adds it here and to both sides.
 */
import type { ApiKeyView, CreateApiKeyInput, CreatedApiKey } from "../broker/api-keys.js";
import type { CatalogueDocument, CatalogueImportReport } from "../broker/catalogue-import.js";
import type { DeviceAuthorizationStarted } from "../broker/device-flow.js";
import type { AccessToken, ConnectionView, IntegrationView } from "../broker/views.js";
import type { DeliveryView, WebhookView } from "../broker/webhooks/admin.js";
import type { TokenEvent } from "../core/events.js";
import type { DeliveryStatus, WebhookInput } from "../core/webhook.js";
import type { PresetEntry } from "../presets/catalogue.js";
import type { ConnectionFilter } from "../store/store.js";

export interface ApiCall {
  method: string;
  /** Relative to the integration's apiBaseUrl, query included. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** An API's answer, read whole (the CLI prints it). */
export interface ApiAnswer {
  status: number;
  statusText: string;
  headers: Array<[string, string]>;
  text: string;
}

export interface FollowOptions {
  /** Only events after this id; left out, from now. */
  after?: number;
  /** Ends the follow (its promise then resolves). */
  signal: AbortSignal;
  /** Called once the events from now on can no longer be missed. */
  onListening?: () => void;
}

export interface AuthorizeOptions {
  /** The loopback port (local only: a service has its own redirect URL). */
  port: number;
  timeoutMs: number;
  /** Called with the URL the person must open, once the answer can be received. */
  onUrl: (url: string) => void;
}

export interface DeviceAuthorizeOptions {
  timeoutMs: number;
  /** Ends the wait at once (the person pressed Ctrl-C): it rejects with `Interrupted`. */
  signal: AbortSignal;
  /** Called with the user code and where to enter it, once the approval can be received. */
  onCode: (started: DeviceAuthorizationStarted) => void;
}

/** A connect link for a connection to authorize again (`connect <id>`). */
export interface ConnectLinkInput {
  connectionId: string;
  expiresInSeconds: number;
  returnUrl?: string;
}

export interface ConnectLink {
  /** `<public-url>/connect/<token>`: the token is the credential, single use. */
  url: string;
  expiresAt: string;
  connectionId: string;
}

export interface Backend {
  /** Where commands run: said in messages that differ (`authorize`'s redirect). */
  readonly where: "local" | "remote";

  findIntegration(key: string): Promise<IntegrationView | undefined>;
  getIntegration(key: string): Promise<IntegrationView>;
  listIntegrations(): Promise<IntegrationView[]>;
  putIntegration(input: Record<string, unknown>): Promise<IntegrationView>;
  deleteIntegration(key: string): Promise<void>;

  findConnection(id: string): Promise<ConnectionView | undefined>;
  getConnection(id: string): Promise<ConnectionView>;
  listConnections(filter: ConnectionFilter): Promise<ConnectionView[]>;
  putConnection(input: Record<string, unknown>): Promise<ConnectionView>;
  deleteConnection(id: string): Promise<void>;

  /** A declarative file's entries, all written or none. */
  applyDeclarative(document: CatalogueDocument): Promise<CatalogueImportReport>;

  getToken(id: string, options: { minTtlSeconds?: number }): Promise<AccessToken>;
  refresh(id: string): Promise<ConnectionView>;
  revoke(id: string): Promise<ConnectionView>;
  /** Newest first. */
  listEvents(id: string, options: { limit: number }): Promise<TokenEvent[]>;
  /** Each new event of the connection, oldest first, until `signal` aborts. */
  followEvents(
    id: string,
    options: FollowOptions,
    onEvent: (event: TokenEvent) => void,
  ): Promise<void>;
  /** The API call with the token placed (and one refresh and retry when it is refused). */
  call(id: string, request: ApiCall): Promise<ApiAnswer>;
  /** The authorization code grant, waiting until the person has answered. */
  authorize(id: string, options: AuthorizeOptions): Promise<ConnectionView>;
  /**
   * The device grant (RFC 8628), waiting until the person has approved on any device.
   * The answering side polls the token endpoint (through a service, the service does).
   */
  authorizeDevice(id: string, options: DeviceAuthorizeOptions): Promise<ConnectionView>;
  /** Withdraws the pending device authorization: nothing polls it any more (`not_found`: none). */
  cancelDeviceAuthorization(id: string): Promise<void>;

  /**
   * A connect link. Its base and the origins `returnUrl` may be on are the answering
   * side's: the local settings (`--public-url`, TOKENWARDEN_CONNECT_RETURN_ORIGINS), or
   * the service's own.
   */
  createConnectLink(input: ConnectLinkInput): Promise<ConnectLink>;

  /** The provider presets of the side that creates integrations from them. */
  listPresets(): Promise<PresetEntry[]>;

  readonly webhooks: {
    /** The answer that creates a webhook holds its signing secret; no other does. */
    put(
      id: string,
      input: Partial<WebhookInput> & { url: string },
    ): Promise<{ webhook: WebhookView; created: boolean }>;
    list(): Promise<WebhookView[]>;
    remove(id: string): Promise<void>;
    /** Newest first. */
    deliveries(
      id: string,
      options: { limit: number; status?: DeliveryStatus },
    ): Promise<DeliveryView[]>;
  };

  readonly apiKeys: {
    create(input: CreateApiKeyInput): Promise<CreatedApiKey>;
    list(): Promise<ApiKeyView[]>;
    delete(id: string): Promise<void>;
  };
}
