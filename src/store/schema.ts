/**
 * The tables, as Kysely sees them. Times are epoch milliseconds in integer columns
 * (`bigint` on PostgreSQL), JSON is text: one schema reads the same on both dialects.
 * Columns named `sealed_*` or holding sealed JSON are AES-GCM ciphertexts (crypto.ts).
 */
import type { Generated } from "kysely";

export interface IntegrationsTable {
  key: string;
  /** The integration as JSON, without its secrets (rows from before 0004 may hold tls.key). */
  document: string;
  /** Before migration 0004: the client secret alone, sealed. Written as null since. */
  sealed_client_secret: string | null;
  /** `{ clientSecret?, "tls.key"? }` (INTEGRATION_SECRET_PATHS), sealed. */
  sealed_secrets: string | null;
  created_at: number;
  updated_at: number;
}

export interface ConnectionsTable {
  id: string;
  integration: string;
  environment: string;
  /** The connection's configuration as JSON, without secrets. */
  document: string;
  /** `{ clientSecret?, password?, refreshToken? }`, sealed. */
  sealed_secrets: string | null;
  status: string;
  /** The current token set (access and refresh token, whole response), sealed. */
  sealed_token: string | null;
  /** Bumped on every token write, so other processes notice a new token cheaply. */
  token_version: number;
  expires_at: number | null;
  /** When the scheduler should next look at this connection; indexed. */
  next_refresh_at: number | null;
  last_refresh_at: number | null;
  failure_count: number;
  /** The last failure, as a secret-free JSON error summary. */
  last_error: string | null;
  scope: string | null;
  created_at: number;
  updated_at: number;
  /** When the refresh token ends (0006_lifecycle); NULL: unknown. */
  refresh_token_expires_at: number | null;
  /** When that end is to be announced; indexed, cleared once announced. */
  refresh_token_warn_at: number | null;
  /** The end last announced: each end is announced once. */
  refresh_token_warned_for: number | null;
}

export interface RateLimitsTable {
  connection_id: string;
  window_start: number;
  count: number;
  held_until: number;
}

export interface LeasesTable {
  connection_id: string;
  holder: string;
  expires_at: number;
}

export interface EventsTable {
  id: Generated<number>;
  connection_id: string;
  integration: string;
  at: number;
  trigger: string;
  action: string;
  outcome: string;
  http_status: number | null;
  error_code: string | null;
  error_description: string | null;
  duration_ms: number;
}

export interface PendingAuthorizationsTable {
  /** SHA-256 of the state: a database reader cannot replay a callback. */
  state_hash: string;
  connection_id: string;
  sealed_code_verifier: string | null;
  redirect_uri: string;
  expires_at: number;
}

/** Device authorizations being polled (0009_device_authorizations), one per connection. */
export interface DeviceAuthorizationsTable {
  connection_id: string;
  flow_id: string;
  sealed_device_code: string;
  expires_at: number;
  interval_ms: number;
  next_poll_at: number;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  /** SHA-256 of the key, base64url: the key itself is shown once and never stored. */
  hash: string;
  created_at: number;
  /** `admin` or `client` (0003_api_key_roles). */
  role: string;
  /** A client key's integrations, as a JSON list; NULL for all. */
  integrations: string | null;
  /** A client key's environments, as a JSON list; NULL for all. */
  environments: string | null;
}

/** The ids of the keys that sealed the values stored here (master-key.ts). */
export interface SealingKeysTable {
  key_id: string;
}

/** Webhook endpoints (0006_lifecycle). */
export interface WebhooksTable {
  id: string;
  url: string;
  /** The event types it takes, as a JSON list. */
  events: string;
  enabled: number;
  /** The signing secret (`whsec_...`), sealed. */
  sealed_secret: string;
  created_at: number;
  updated_at: number;
}

/**
 * The outbox: one row per event and endpoint, written in the transaction that changed
 * the connection. A row is claimed by moving `next_attempt_at` ahead (a lease), so a
 * cluster tries each once at a time and a dead process's rows come due again.
 */
export interface WebhookDeliveriesTable {
  id: Generated<number>;
  /** `webhook-id`: the same for every attempt and endpoint of one event. */
  message_id: string;
  webhook_id: string;
  type: string;
  connection_id: string;
  /** The JSON body, exactly as signed and sent. */
  payload: string;
  /** `pending`, `succeeded` or `failed`. */
  status: string;
  attempts: number;
  /** While pending: when it is due (or when its claim lapses); NULL once done. */
  next_attempt_at: number | null;
  lease_holder: string | null;
  created_at: number;
  last_attempt_at: number | null;
  last_http_status: number | null;
  last_error: string | null;
  delivered_at: number | null;
}

/** Connect sessions (0006_lifecycle): the link's token is kept only as its hash. */
export interface ConnectSessionsTable {
  token_hash: string;
  connection_id: string;
  integration: string;
  environment: string;
  /** JSON object of parameter values (not secrets). */
  parameters: string;
  /** 1: the session creates the connection; 0: it re-authorizes an existing one. */
  creates: number;
  return_url: string | null;
  /** `open`, `started` (the person went to the server), `completed`. */
  status: string;
  /** Hash of the authorization state it started, to find it again at the callback. */
  state_hash: string | null;
  /** Failed password attempts. */
  attempts: number;
  expires_at: number;
  created_at: number;
}

/** What `clientAuth: auto` found a token endpoint accepts, per integration (0007_protocol_a). */
export interface ClientAuthLearnedTable {
  integration: string;
  /** The token endpoint it was learned at: a move makes it unknown again. */
  token_url: string;
  method: string;
  updated_at: number;
}

/** The client Tokenwarden is at an MCP server's authorization server (migration 0011). */
export interface McpClientsTable {
  integration: string;
  /** The authorization server's issuer: another server makes the client unknown again. */
  issuer: string;
  client_id: string;
  /** How it was found: `registered` (RFC 7591) or `document` (client ID metadata document). */
  kind: string;
  client_auth: string;
  /** Sealed (crypto.ts); a document's client or a public one has none. */
  sealed_client_secret: string | null;
  /** JSON list of the redirect URIs it was registered with. */
  redirect_uris: string;
  updated_at: number;
}

export interface Database {
  tw_integrations: IntegrationsTable;
  tw_connections: ConnectionsTable;
  tw_leases: LeasesTable;
  tw_rate_limits: RateLimitsTable;
  tw_events: EventsTable;
  tw_pending_authorizations: PendingAuthorizationsTable;
  tw_device_authorizations: DeviceAuthorizationsTable;
  tw_api_keys: ApiKeysTable;
  tw_sealing_keys: SealingKeysTable;
  tw_webhooks: WebhooksTable;
  tw_webhook_deliveries: WebhookDeliveriesTable;
  tw_connect_sessions: ConnectSessionsTable;
  tw_client_auth_learned: ClientAuthLearnedTable;
  tw_mcp_clients: McpClientsTable;
}
