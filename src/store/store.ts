/**
 * Everything Tokenwarden keeps, behind one interface split by role. The drivers seal
 * secrets on the way in and open them on the way out: above this line values are
 * plaintext, below it they are ciphertext.
 */

import type { Connection, ConnectionState, ConnectionStatus } from "../core/connection.js";
import type { NewTokenEvent, TokenEvent } from "../core/events.js";
import type { Integration } from "../core/integration.js";
import type { StatePatch } from "../core/state.js";
import type { TokenSet } from "../core/token-set.js";
import type { ConnectSessionStore } from "./connect-store.js";
import type { RotationReport } from "./rotation.js";
import type { WebhookStore } from "./webhook-store.js";

export interface StoredConnection {
  connection: Connection;
  state: ConnectionState;
  token: TokenSet | undefined;
  createdAt: number;
  updatedAt: number;
}

export interface ConnectionSummary {
  connection: Connection;
  state: ConnectionState;
  createdAt: number;
  updatedAt: number;
}

export interface StoredIntegration {
  integration: Integration;
  createdAt: number;
  updatedAt: number;
}

export type { StatePatch } from "../core/state.js";

export interface PendingAuthorization {
  state: string;
  connectionId: string;
  codeVerifier: string | undefined;
  redirectUri: string;
  expiresAt: number;
}

/**
 * A device authorization (RFC 8628) waiting for the person's approval: kept in the
 * store so that any process on the database can go on polling it, after a restart too.
 */
export interface PendingDeviceAuthorization {
  connectionId: string;
  /** Names this flow: a newer flow of the same connection replaces it. */
  flowId: string;
  /** Sealed at rest. */
  deviceCode: string;
  expiresAt: number;
  /** The polling interval, slow_down increases included. */
  intervalMs: number;
  /** When the next poll may go out, whichever process sends it. */
  nextPollAt: number;
}

export interface ConnectionFilter {
  integration?: string;
  status?: ConnectionStatus;
  environment?: string;
}

export type ApiKeyRole = "admin" | "client";

/**
 * An API key as stored: its hash, never the key. A `client` key may be limited to some
 * integrations and environments (`null`: no limit); an `admin` key never is.
 */
export interface NewStoredApiKey {
  id: string;
  name: string;
  hash: string;
  /** Default `admin`. */
  role?: ApiKeyRole;
  integrations?: string[] | null;
  environments?: string[] | null;
}

export interface StoredApiKey {
  id: string;
  name: string;
  hash: string;
  role: ApiKeyRole;
  integrations: string[] | null;
  environments: string[] | null;
  createdAt: number;
}

/**
 * The integrations and connections as configured: what a person writes, with the
 * state a connection is created in. Documents are parsed with their schemas on the
 * way out (documents.ts): a row written by an older version reads with the defaults
 * of fields added since, and a row that no longer parses is a `storage_error` naming it.
 */
export interface ConfigurationStore {
  putIntegration(integration: Integration, now: number): Promise<{ created: boolean }>;
  getIntegration(key: string): Promise<StoredIntegration | undefined>;
  listIntegrations(): Promise<StoredIntegration[]>;
  /** Fails with `conflict` while connections use it. */
  deleteIntegration(key: string): Promise<boolean>;

  /** Writes the configuration; `initialState` is used on insert, `statePatch` on both. */
  putConnection(
    connection: Connection,
    now: number,
    initialState: ConnectionState,
    statePatch?: StatePatch,
  ): Promise<{ created: boolean }>;
  getConnection(id: string): Promise<StoredConnection | undefined>;
  listConnections(filter?: ConnectionFilter): Promise<ConnectionSummary[]>;
  deleteConnection(id: string): Promise<boolean>;
}

/**
 * A connection checked out by the scheduler, with what renewing it needs read in the
 * same pass (`undefined` when its row or its integration could not be read: the
 * renewal then reads them itself, and fails as a read would).
 */
export interface DueConnection {
  id: string;
  /** When it was due (ms): how late the scheduler picked it up. */
  nextRefreshAt: number;
  loaded?: { stored: StoredConnection; integration: Integration };
}

/** One renewal's write for `TokenStateStore.writeRenewals`. */
export interface RenewalWrite {
  id: string;
  /** A renewal's whole patch (core/state.ts `afterToken`): every field set, a token included. */
  patch: StatePatch;
  expectedVersion: number;
  expectedStatus: ConnectionStatus;
  /** The lease claim to release with the write. */
  leaseHolder?: string;
  event: NewTokenEvent;
  /** The change message for the other processes (`ChangeFeed.publishChange`). */
  topic: string;
}

export interface RenewalWritten {
  tokenVersion: number;
  event: TokenEvent;
}

/** A connection's token and state as the broker moves it along, and the schedule. */
export interface TokenStateStore {
  /**
   * Writes state and token in one statement (a rotated refresh token lands with its
   * access token or not at all). Returns the new token version; with
   * `expectedVersion`, writes only if the token version is still that one, and
   * returns `undefined` when it is not (a newer token was written meanwhile).
   */
  updateState(
    id: string,
    patch: StatePatch,
    now: number,
    expectedVersion?: number,
  ): Promise<number | undefined>;
  /** The cheap read a waiting process polls: has a new token been written? */
  readTokenVersion(
    id: string,
  ): Promise<{ tokenVersion: number; status: ConnectionStatus } | undefined>;
  /**
   * Checks out up to `limit` connections due by `now`, soonest first, by moving their
   * next refresh to `until`: other processes' schedulers no longer see them as due, so
   * a cluster splits the work; if this process dies they come due again at `until`.
   */
  claimDueConnections(now: number, limit: number, until: number): Promise<DueConnection[]>;
  /**
   * Many renewals' writes at once (the scheduler's storm path, write-behind.ts): for
   * each, the token and state of `patch`, written only if the token version and status
   * are still `expectedVersion` and `expectedStatus` (so no status changes here, and no
   * lifecycle event is owed), with its `event` appended, its lease released if still
   * `leaseHolder`'s, and `topic` told to the other processes, all with the write or not
   * at all. One answer per write, in order: the new token version and the stored event,
   * or `undefined` when the conditions no longer held and nothing of it was written.
   */
  writeRenewals(writes: RenewalWrite[], now: number): Promise<Array<RenewalWritten | undefined>>;
  /** For the metrics: how many connections are in each status. */
  countConnectionsByStatus(): Promise<Partial<Record<ConnectionStatus, number>>>;
}

/** Per-connection rate limits (protocol breadth): shared by every process on the database. */
export interface RateLimitStore {
  /**
   * Counts one call in the fixed window starting at `windowStart` (epoch ms) if fewer
   * than `limit` were counted there; `false` when the window is full. A later window
   * starts the count over.
   */
  takeRateSlot(connectionId: string, windowStart: number, limit: number): Promise<boolean>;
  /** Holds the connection's API calls until `until` (an API's Retry-After); never shortens a hold. */
  holdCalls(connectionId: string, until: number): Promise<void>;
  /** Until when calls are held (epoch ms; 0 when they are not). */
  callsHeldUntil(connectionId: string): Promise<number>;
}

/** The refresh lease: one holder renews a connection at a time, across processes. */
export interface LeaseStore {
  /** Claims the refresh lease if it is free, expired or already ours. */
  tryClaimLease(id: string, holder: string, until: number, now: number): Promise<boolean>;
  /**
   * `tryClaimLease` for many connections under one claim name, in one pass. Returns
   * those claimed, with the token version and status they have now (a renewal that
   * finished just before the claim shows here); a connection that no longer exists
   * comes back without them.
   */
  tryClaimLeases(
    ids: readonly string[],
    holder: string,
    until: number,
    now: number,
  ): Promise<Array<{ id: string; current?: { tokenVersion: number; status: ConnectionStatus } }>>;
  /** Extends every lease `holder` still has to `until` (the keep-alive of a batch claim). */
  extendLeases(holder: string, until: number): Promise<void>;
  releaseLease(id: string, holder: string): Promise<void>;
}

/** The record of every attempt (event-log.ts writes it, the feeds read it). */
export interface EventStore {
  appendEvent(event: NewTokenEvent): Promise<TokenEvent>;
  /** Newest first; `beforeId` pages backwards. */
  listEvents(
    connectionId: string,
    options: { limit: number; beforeId?: number },
  ): Promise<TokenEvent[]>;
  /**
   * Every connection's events with an id above `afterId`, oldest first, at most `limit`:
   * the cluster-wide feed (each process writes here), read by the primary key.
   */
  listEventsAfter(afterId: number, limit: number): Promise<TokenEvent[]>;
  /** The highest event id so far (0 when there is none): where a live feed starts. */
  lastEventId(): Promise<number>;
}

/** Authorization-code flows between the redirect and the callback. */
export interface PendingAuthorizationStore {
  putPendingAuthorization(pending: PendingAuthorization): Promise<void>;
  /** Removes and returns it: a state can be used once. */
  takePendingAuthorization(state: string, now: number): Promise<PendingAuthorization | undefined>;
}

/** Device authorizations being polled, one per connection, shared by every process. */
export interface DeviceAuthorizationStore {
  /** Records a new flow for the connection, replacing any earlier one. */
  putDeviceAuthorization(flow: PendingDeviceAuthorization): Promise<void>;
  getDeviceAuthorization(connectionId: string): Promise<PendingDeviceAuthorization | undefined>;
  /** Every pending one (flows are few: one per connection being authorized). */
  listDeviceAuthorizations(): Promise<PendingDeviceAuthorization[]>;
  /** Moves this flow's next poll; false when it is no longer the connection's flow. */
  rescheduleDeviceAuthorization(
    connectionId: string,
    flowId: string,
    next: { intervalMs: number; nextPollAt: number },
  ): Promise<boolean>;
  /** Ends this flow; false when it had ended already or was replaced. */
  deleteDeviceAuthorization(connectionId: string, flowId: string): Promise<boolean>;
}

/** The service's API keys, as hashes. */
export interface ApiKeyStore {
  createApiKey(key: NewStoredApiKey, now: number): Promise<void>;
  listApiKeys(): Promise<StoredApiKey[]>;
  deleteApiKey(id: string): Promise<boolean>;
}

/** The master keys the sealed values are under (master-key.ts, rotation.ts). */
export interface KeyManagementStore {
  /**
   * Re-seals every sealed value under the current key in one transaction (`tokenwarden
   * key rotate`); afterwards previous keys are no longer needed. The report names the
   * key id everything is now sealed under.
   */
  rotateKeys(): Promise<RotationReport>;
}

/** Changes told to the other processes on the same database, so they drop their caches. */
export interface ChangeFeed {
  /**
   * Tells the other processes on this database that a connection (`connection:<id>`) or
   * an integration (`integration:<key>`) changed, so they drop what they cached.
   * PostgreSQL carries it with NOTIFY; SQLite has no such channel (a no-op).
   */
  publishChange(topic: string): Promise<void>;
  /**
   * Calls `listener` for every change another process publishes; returns an unsubscribe.
   * `onResubscribed` is called when the channel is back after it was lost (the database
   * restarted): changes published meanwhile were missed, so drop what was cached.
   */
  subscribeChanges(
    listener: (topic: string) => void,
    onResubscribed?: () => void,
  ): Promise<() => Promise<void>>;
}

/** The database itself: which one, transactions, readiness, closing. */
export interface StoreLifecycle {
  readonly dialect: "sqlite" | "postgres";

  /** Webhook endpoints and their outbox, bound to this store (or its transaction). */
  readonly webhooks: WebhookStore;
  /** Connect sessions, bound likewise. */
  readonly connectSessions: ConnectSessionStore;

  /**
   * Runs `fn` in one transaction with a store bound to it: everything `fn` writes
   * through that store lands together or not at all. Changes it publishes are sent
   * after the commit (and dropped on a rollback). Inside a transaction, this joins it.
   * On SQLite the database has one connection: `fn` must use the store it is given,
   * never this one, or it waits for itself.
   */
  transaction<T>(fn: (store: Store) => Promise<T>): Promise<T>;

  /**
   * For readiness: the database answers and every migration has run. Never throws.
   * Every other method fails with `storage_error` when the database does not answer.
   */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** A client authentication method a token endpoint accepted (`clientAuth: auto`). */
export interface LearnedClientAuth {
  tokenUrl: string;
  method: string;
}

/** What `clientAuth: auto` learned a token endpoint accepts, per integration. */
export interface LearnedClientAuthStore {
  /** `undefined`: nothing learned yet. */
  getLearnedClientAuth(integration: string): Promise<LearnedClientAuth | undefined>;
  putLearnedClientAuth(integration: string, learned: LearnedClientAuth, now: number): Promise<void>;
}

/** The client Tokenwarden is at an MCP server's authorization server (broker/mcp-servers.ts). */
export interface McpClient {
  issuer: string;
  clientId: string;
  /** `registered`: RFC 7591; `document`: a client ID metadata document's URL. */
  kind: "registered" | "document";
  clientAuth: string;
  /** Stored sealed; never shown. */
  clientSecret: string | undefined;
  redirectUris: string[];
}

/** The MCP clients, per integration. */
export interface McpClientStore {
  /** `undefined`: none found yet. */
  getMcpClient(integration: string): Promise<McpClient | undefined>;
  putMcpClient(integration: string, client: McpClient, now: number): Promise<void>;
}

/**
 * Everything Tokenwarden keeps: each role above, on one database. A module that needs
 * one role takes that role's interface (lease.ts a `LeaseStore`, event-log.ts an
 * `EventStore`), so what it can touch is plain from its signature.
 */
export interface Store
  extends ConfigurationStore,
    TokenStateStore,
    LeaseStore,
    RateLimitStore,
    EventStore,
    PendingAuthorizationStore,
    DeviceAuthorizationStore,
    ApiKeyStore,
    LearnedClientAuthStore,
    McpClientStore,
    KeyManagementStore,
    ChangeFeed,
    StoreLifecycle {}
