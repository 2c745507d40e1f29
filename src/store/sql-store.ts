/**
 * The store on Kysely: one implementation for SQLite and PostgreSQL, since the SQL
 * they need here (upserts with RETURNING, conditional upserts for leases) is the same.
 * The drivers differ only in how the Kysely instance is made (open.ts).
 *
 * Each role lives in a module of its own (sql-configuration.ts, sql-token-state.ts,
 * sql-leases.ts, sql-rate-limits.ts, sql-events.ts, sql-pending-authorizations.ts,
 * sql-device-authorizations.ts, sql-api-keys.ts, sql-learned-client-auth.ts) on a
 * shared context (sql-context.ts); this class composes them, and keeps what spans
 * them all: transactions, the sealing key, the change feed, readiness and closing.
 */
import { type Kysely, sql } from "kysely";
import type { Connection, ConnectionState, ConnectionStatus } from "../core/connection.js";
import type { NewTokenEvent, TokenEvent } from "../core/events.js";
import type { Integration } from "../core/integration.js";
import type { StatePatch } from "../core/state.js";
import { ConnectSessionStore } from "./connect-store.js";
import type { Sealer } from "./crypto.js";
import { IntegrationMemo } from "./integration-memo.js";
import { keyIdsInUse, missingKeyIds, recordKeyId } from "./master-key.js";
import { type Dialect, migrationsComplete } from "./migrations.js";
import { type RotationReport, rotateSealedValues, sealLegacyIntegrations } from "./rotation.js";
import type { Database } from "./schema.js";
import { SqlApiKeys } from "./sql-api-keys.js";
import { SqlConfiguration } from "./sql-configuration.js";
import type { SqlContext } from "./sql-context.js";
import { SqlDeviceAuthorizations } from "./sql-device-authorizations.js";
import { SqlEvents } from "./sql-events.js";
import { SqlLearnedClientAuth } from "./sql-learned-client-auth.js";
import { SqlLeases } from "./sql-leases.js";
import { SqlMcpClients } from "./sql-mcp-clients.js";
import { SqlPendingAuthorizations } from "./sql-pending-authorizations.js";
import { SqlRateLimits } from "./sql-rate-limits.js";
import { SqlTokenState } from "./sql-token-state.js";
import { guardStore } from "./storage-errors.js";
import type {
  ConnectionFilter,
  ConnectionSummary,
  DueConnection,
  LearnedClientAuth,
  McpClient,
  NewStoredApiKey,
  PendingAuthorization,
  PendingDeviceAuthorization,
  RenewalWrite,
  RenewalWritten,
  Store,
  StoredApiKey,
  StoredConnection,
  StoredIntegration,
} from "./store.js";
import { WebhookStore } from "./webhook-store.js";

/** A channel between processes on one database (PostgreSQL LISTEN/NOTIFY). */
export interface ChangeNotifier {
  publish(topic: string): Promise<void>;
  subscribe(
    listener: (topic: string) => void,
    onResubscribed?: () => void,
  ): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** Inside `transaction`: the topics to publish once it has committed. */
interface TransactionScope {
  published: string[];
}

export class SqlStore implements Store {
  readonly dialect: Dialect;
  readonly #db: Kysely<Database>;
  readonly #sealer: Sealer;
  readonly #notifier: ChangeNotifier | undefined;
  readonly #scope: TransactionScope | undefined;
  readonly #integrations: IntegrationMemo;
  /** Whether this process has recorded its sealing key id (master-key.ts). */
  #keyRecorded = false;

  readonly #configuration: SqlConfiguration;
  readonly #tokenState: SqlTokenState;
  readonly #leases: SqlLeases;
  readonly #rateLimits: SqlRateLimits;
  readonly #events: SqlEvents;
  readonly #pending: SqlPendingAuthorizations;
  readonly #devices: SqlDeviceAuthorizations;
  readonly #apiKeys: SqlApiKeys;
  readonly #learned: SqlLearnedClientAuth;
  readonly #mcpClients: SqlMcpClients;

  constructor(
    db: Kysely<Database>,
    dialect: Dialect,
    sealer: Sealer,
    notifier?: ChangeNotifier,
    scope?: TransactionScope,
    integrations = new IntegrationMemo(sealer),
  ) {
    this.#db = db;
    this.dialect = dialect;
    this.#sealer = sealer;
    this.#notifier = notifier;
    this.#scope = scope;
    this.#integrations = integrations;
    const ctx: SqlContext = {
      db,
      dialect,
      sealer,
      inTransaction: scope !== undefined,
      recordKey: () => this.#recordKey(),
      integrations,
    };
    this.#configuration = new SqlConfiguration(ctx);
    this.#tokenState = new SqlTokenState(ctx);
    this.#leases = new SqlLeases(ctx);
    this.#rateLimits = new SqlRateLimits(ctx);
    this.#events = new SqlEvents(ctx);
    this.#pending = new SqlPendingAuthorizations(ctx);
    this.#devices = new SqlDeviceAuthorizations(ctx);
    this.#apiKeys = new SqlApiKeys(ctx);
    this.#learned = new SqlLearnedClientAuth(ctx);
    this.#mcpClients = new SqlMcpClients(ctx);
  }

  // Lifecycle (0006): bound to this store's database or transaction ------------------

  get webhooks(): WebhookStore {
    return guardStore(new WebhookStore(this.#db, this.dialect, this.#sealer));
  }

  get connectSessions(): ConnectSessionStore {
    return guardStore(new ConnectSessionStore(this.#db));
  }

  // Transactions and keys ---------------------------------------------------------

  async transaction<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    if (this.#scope !== undefined) return fn(this); // already in one: join it
    const scope: TransactionScope = { published: [] };
    const result = await this.#db.transaction().execute(async (trx) => {
      // SQLite: take the write lock first (as BEGIN IMMEDIATE would), so a write by
      // another process waits its turn instead of failing a snapshot that went stale.
      if (this.dialect === "sqlite")
        await sql`update tw_sealing_keys set key_id = key_id where 1 = 0`.execute(trx);
      return fn(
        new SqlStore(trx, this.dialect, this.#sealer, undefined, scope, this.#integrations),
      );
    });
    // Other processes hear of the change only once it is there to be read.
    for (const topic of scope.published) await this.publishChange(topic);
    return result;
  }

  /**
   * Records the current key id before a value sealed under it is written, so a later
   * start with another key is refused (master-key.ts). Once per process outside a
   * transaction; every time inside one, since a rollback would take the record along.
   */
  async #recordKey(): Promise<void> {
    if (this.#keyRecorded) return;
    await recordKeyId(this.#db, this.#sealer.currentKeyId);
    if (this.#scope === undefined) this.#keyRecorded = true;
  }

  async rotateKeys(): Promise<RotationReport> {
    const report = await rotateSealedValues(this.#db, this.dialect, this.#sealer);
    this.#keyRecorded = false;
    return report;
  }

  /** Seals what integrations written before migration 0004 kept the old way (open.ts). */
  async sealLegacySecrets(): Promise<number> {
    return sealLegacyIntegrations(this.#db, this.#sealer);
  }

  // Configuration (sql-configuration.ts) ------------------------------------------

  putIntegration(integration: Integration, now: number): Promise<{ created: boolean }> {
    return this.#configuration.putIntegration(integration, now);
  }
  getIntegration(key: string): Promise<StoredIntegration | undefined> {
    return this.#configuration.getIntegration(key);
  }
  listIntegrations(): Promise<StoredIntegration[]> {
    return this.#configuration.listIntegrations();
  }
  deleteIntegration(key: string): Promise<boolean> {
    return this.#configuration.deleteIntegration(key);
  }
  putConnection(
    connection: Connection,
    now: number,
    initialState: ConnectionState,
    statePatch?: StatePatch,
  ): Promise<{ created: boolean }> {
    return this.#configuration.putConnection(connection, now, initialState, statePatch);
  }
  getConnection(id: string): Promise<StoredConnection | undefined> {
    return this.#configuration.getConnection(id);
  }
  listConnections(filter?: ConnectionFilter): Promise<ConnectionSummary[]> {
    return this.#configuration.listConnections(filter);
  }
  deleteConnection(id: string): Promise<boolean> {
    return this.#configuration.deleteConnection(id);
  }

  // Token state (sql-token-state.ts) ----------------------------------------------

  updateState(
    id: string,
    patch: StatePatch,
    now: number,
    expectedVersion?: number,
  ): Promise<number | undefined> {
    return this.#tokenState.updateState(id, patch, now, expectedVersion);
  }
  readTokenVersion(
    id: string,
  ): Promise<{ tokenVersion: number; status: ConnectionStatus } | undefined> {
    return this.#tokenState.readTokenVersion(id);
  }
  claimDueConnections(now: number, limit: number, until: number): Promise<DueConnection[]> {
    return this.#tokenState.claimDueConnections(now, limit, until);
  }
  writeRenewals(writes: RenewalWrite[], now: number): Promise<Array<RenewalWritten | undefined>> {
    return this.#tokenState.writeRenewals(writes, now);
  }
  countConnectionsByStatus(): Promise<Partial<Record<ConnectionStatus, number>>> {
    return this.#tokenState.countConnectionsByStatus();
  }

  // Leases (sql-leases.ts) --------------------------------------------------------

  tryClaimLease(id: string, holder: string, until: number, now: number): Promise<boolean> {
    return this.#leases.tryClaimLease(id, holder, until, now);
  }
  tryClaimLeases(
    ids: readonly string[],
    holder: string,
    until: number,
    now: number,
  ): Promise<Array<{ id: string; current?: { tokenVersion: number; status: ConnectionStatus } }>> {
    return this.#leases.tryClaimLeases(ids, holder, until, now);
  }
  extendLeases(holder: string, until: number): Promise<void> {
    return this.#leases.extendLeases(holder, until);
  }
  releaseLease(id: string, holder: string): Promise<void> {
    return this.#leases.releaseLease(id, holder);
  }

  // Rate limits (sql-rate-limits.ts) ----------------------------------------------

  takeRateSlot(connectionId: string, windowStart: number, limit: number): Promise<boolean> {
    return this.#rateLimits.takeRateSlot(connectionId, windowStart, limit);
  }
  holdCalls(connectionId: string, until: number): Promise<void> {
    return this.#rateLimits.holdCalls(connectionId, until);
  }
  callsHeldUntil(connectionId: string): Promise<number> {
    return this.#rateLimits.callsHeldUntil(connectionId);
  }

  // Learned client authentication (sql-learned-client-auth.ts) --------------------

  getLearnedClientAuth(integration: string): Promise<LearnedClientAuth | undefined> {
    return this.#learned.getLearnedClientAuth(integration);
  }
  putLearnedClientAuth(
    integration: string,
    learned: LearnedClientAuth,
    now: number,
  ): Promise<void> {
    return this.#learned.putLearnedClientAuth(integration, learned, now);
  }

  // MCP clients (sql-mcp-clients.ts) --------------------------------------------

  getMcpClient(integration: string): Promise<McpClient | undefined> {
    return this.#mcpClients.getMcpClient(integration);
  }
  putMcpClient(integration: string, client: McpClient, now: number): Promise<void> {
    return this.#mcpClients.putMcpClient(integration, client, now);
  }

  // Events (sql-events.ts) --------------------------------------------------------

  appendEvent(event: NewTokenEvent): Promise<TokenEvent> {
    return this.#events.appendEvent(event);
  }
  listEvents(
    connectionId: string,
    options: { limit: number; beforeId?: number },
  ): Promise<TokenEvent[]> {
    return this.#events.listEvents(connectionId, options);
  }
  listEventsAfter(afterId: number, limit: number): Promise<TokenEvent[]> {
    return this.#events.listEventsAfter(afterId, limit);
  }
  lastEventId(): Promise<number> {
    return this.#events.lastEventId();
  }

  // Pending authorizations (sql-pending-authorizations.ts) ------------------------

  putPendingAuthorization(pending: PendingAuthorization): Promise<void> {
    return this.#pending.putPendingAuthorization(pending);
  }
  takePendingAuthorization(state: string, now: number): Promise<PendingAuthorization | undefined> {
    return this.#pending.takePendingAuthorization(state, now);
  }

  // Device authorizations (sql-device-authorizations.ts) -------------------------

  putDeviceAuthorization(flow: PendingDeviceAuthorization): Promise<void> {
    return this.#devices.putDeviceAuthorization(flow);
  }
  getDeviceAuthorization(connectionId: string): Promise<PendingDeviceAuthorization | undefined> {
    return this.#devices.getDeviceAuthorization(connectionId);
  }
  listDeviceAuthorizations(): Promise<PendingDeviceAuthorization[]> {
    return this.#devices.listDeviceAuthorizations();
  }
  rescheduleDeviceAuthorization(
    connectionId: string,
    flowId: string,
    next: { intervalMs: number; nextPollAt: number },
  ): Promise<boolean> {
    return this.#devices.rescheduleDeviceAuthorization(connectionId, flowId, next);
  }
  deleteDeviceAuthorization(connectionId: string, flowId: string): Promise<boolean> {
    return this.#devices.deleteDeviceAuthorization(connectionId, flowId);
  }

  // API keys (sql-api-keys.ts) ----------------------------------------------------

  createApiKey(key: NewStoredApiKey, now: number): Promise<void> {
    return this.#apiKeys.createApiKey(key, now);
  }
  listApiKeys(): Promise<StoredApiKey[]> {
    return this.#apiKeys.listApiKeys();
  }
  deleteApiKey(id: string): Promise<boolean> {
    return this.#apiKeys.deleteApiKey(id);
  }

  // Change feed -------------------------------------------------------------------

  async publishChange(topic: string): Promise<void> {
    if (this.#scope !== undefined) this.#scope.published.push(topic);
    else await this.#notifier?.publish(topic);
  }

  async subscribeChanges(
    listener: (topic: string) => void,
    onResubscribed?: () => void,
  ): Promise<() => Promise<void>> {
    if (this.#notifier === undefined) return async () => undefined;
    return this.#notifier.subscribe(listener, onResubscribed);
  }

  // Lifecycle ---------------------------------------------------------------------

  async ping(): Promise<boolean> {
    try {
      await sql`select 1`.execute(this.#db);
      if (!(await migrationsComplete(this.#db, this.dialect))) return false;
      // Not ready while something is sealed under a key this process lacks (a
      // rotation by another process it was not given the new key for).
      return missingKeyIds(await keyIdsInUse(this.#db), this.#sealer).length === 0;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.#scope !== undefined) return; // the transaction's owner closes the database
    await this.#notifier?.close();
    await this.#db.destroy();
  }
}
