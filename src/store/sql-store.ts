import { createHash } from "node:crypto";
import { type Kysely, type Selectable, sql } from "kysely";
import type {
  Connection,
  ConnectionState,
  ConnectionStatus,
  ErrorSummary,
} from "../core/connection.js";
import { TokenwardenError } from "../core/errors.js";
import type {
  EventAction,
  EventOutcome,
  EventTrigger,
  NewTokenEvent,
  TokenEvent,
} from "../core/events.js";
import type { Integration } from "../core/integration.js";
import type { TokenSet } from "../core/token-set.js";
import type { Sealer } from "./crypto.js";
import { keyIdsInUse, missingKeyIds, recordKeyId } from "./master-key.js";
import { type Dialect, migrationsComplete } from "./migrations.js";
import { type RotationReport, rotateSealedValues, sealLegacyIntegrations } from "./rotation.js";
import type { ConnectionsTable, Database, EventsTable } from "./schema.js";
import { integrationColumns, integrationFromColumns, sealingContext } from "./sealed-rows.js";
import type {
  ConnectionFilter,
  ConnectionSummary,
  LearnedClientAuth,
  NewStoredApiKey,
  PendingAuthorization,
  StatePatch,
  Store,
  StoredApiKey,
  StoredConnection,
  StoredIntegration,
} from "./store.js";

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

/**
 * The store on Kysely: one implementation for SQLite and PostgreSQL, since the SQL
 * they need here (upserts with RETURNING, conditional upserts for leases) is the same.
 * The drivers differ only in how the Kysely instance is made (open.ts).
 */
export class SqlStore implements Store {
  readonly dialect: Dialect;
  readonly #db: Kysely<Database>;
  readonly #sealer: Sealer;
  readonly #notifier: ChangeNotifier | undefined;
  readonly #scope: TransactionScope | undefined;
  /** Whether this process has recorded its sealing key id (master-key.ts). */
  #keyRecorded = false;

  constructor(
    db: Kysely<Database>,
    dialect: Dialect,
    sealer: Sealer,
    notifier?: ChangeNotifier,
    scope?: TransactionScope,
  ) {
    this.#db = db;
    this.dialect = dialect;
    this.#sealer = sealer;
    this.#notifier = notifier;
    this.#scope = scope;
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
      return fn(new SqlStore(trx, this.dialect, this.#sealer, undefined, scope));
    });
    // Other processes hear of the change only once it is there to be read.
    for (const topic of scope.published) await this.publishChange(topic);
    return result;
  }

  /** Runs `fn` in a transaction, or in the one this store is bound to. */
  #atomically<T>(fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.#scope === undefined ? this.#db.transaction().execute(fn) : fn(this.#db);
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

  // Integrations ------------------------------------------------------------------

  async putIntegration(integration: Integration, now: number): Promise<{ created: boolean }> {
    const { sealedAny, ...columns } = integrationColumns(integration, this.#sealer);
    if (sealedAny) await this.#recordKey();
    const row = { key: integration.key, ...columns, created_at: now, updated_at: now };
    const result = await this.#db
      .insertInto("tw_integrations")
      .values(row)
      .onConflict((oc) => oc.column("key").doUpdateSet({ ...columns, updated_at: now }))
      .returning("created_at")
      .executeTakeFirstOrThrow();
    return { created: Number(result.created_at) === now };
  }

  async getIntegration(key: string): Promise<StoredIntegration | undefined> {
    const row = await this.#db
      .selectFrom("tw_integrations")
      .selectAll()
      .where("key", "=", key)
      .executeTakeFirst();
    return row === undefined ? undefined : this.#integrationFrom(row);
  }

  async listIntegrations(): Promise<StoredIntegration[]> {
    const rows = await this.#db.selectFrom("tw_integrations").selectAll().orderBy("key").execute();
    return rows.map((row) => this.#integrationFrom(row));
  }

  async deleteIntegration(key: string): Promise<boolean> {
    return this.#atomically(async (trx) => {
      const used = await trx
        .selectFrom("tw_connections")
        .select(({ fn }) => fn.countAll<number>().as("n"))
        .where("integration", "=", key)
        .executeTakeFirstOrThrow();
      if (Number(used.n) > 0) {
        throw new TokenwardenError(
          "conflict",
          `integration ${key} is used by ${used.n} connection(s); delete them first`,
        );
      }
      const result = await trx
        .deleteFrom("tw_integrations")
        .where("key", "=", key)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }

  #integrationFrom(row: Selectable<Database["tw_integrations"]>): StoredIntegration {
    return {
      integration: integrationFromColumns(row, this.#sealer),
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
    };
  }

  // Connections -------------------------------------------------------------------

  async putConnection(
    connection: Connection,
    now: number,
    initialState: ConnectionState,
    statePatch: StatePatch = {},
  ): Promise<{ created: boolean }> {
    const { clientSecret, password, refreshToken, ...document } = connection;
    const secrets = { clientSecret, password, refreshToken };
    const hasSecrets = Object.values(secrets).some((v) => v !== undefined);
    const config = {
      integration: connection.integration,
      environment: connection.environment,
      document: JSON.stringify(document),
      sealed_secrets: hasSecrets
        ? this.#sealer.seal(
            JSON.stringify(secrets),
            sealingContext.connectionSecrets(connection.id),
          )
        : null,
      updated_at: now,
    };
    const patchColumns = this.#stateColumns(connection.id, statePatch);
    const insertColumns = this.#stateColumns(connection.id, { ...initialState, ...statePatch });
    if (hasSecrets || insertColumns.sealed_token != null) await this.#recordKey();
    const result = await this.#db
      .insertInto("tw_connections")
      .values({
        id: connection.id,
        ...config,
        status: initialState.status,
        token_version: 0,
        failure_count: 0,
        ...insertColumns,
        created_at: now,
      })
      .onConflict((oc) =>
        oc.column("id").doUpdateSet({
          ...config,
          ...patchColumns,
          // Forgetting the token is a token write: a refresh in flight must not undo it.
          ...(statePatch.token === undefined
            ? {}
            : { token_version: sql<number>`tw_connections.token_version + 1` }),
        }),
      )
      .returning("created_at")
      .executeTakeFirstOrThrow();
    return { created: Number(result.created_at) === now };
  }

  async getConnection(id: string): Promise<StoredConnection | undefined> {
    const row = await this.#db
      .selectFrom("tw_connections")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const token =
      row.sealed_token === null
        ? undefined
        : (JSON.parse(
            this.#sealer.open(row.sealed_token, sealingContext.connectionToken(id)),
          ) as TokenSet);
    return { ...this.#summaryFrom(row), token };
  }

  async listConnections(filter: ConnectionFilter = {}): Promise<ConnectionSummary[]> {
    let query = this.#db.selectFrom("tw_connections").selectAll().orderBy("id");
    if (filter.integration !== undefined)
      query = query.where("integration", "=", filter.integration);
    if (filter.status !== undefined) query = query.where("status", "=", filter.status);
    if (filter.environment !== undefined)
      query = query.where("environment", "=", filter.environment);
    const rows = await query.execute();
    return rows.map((row) => this.#summaryFrom(row));
  }

  async deleteConnection(id: string): Promise<boolean> {
    return this.#atomically(async (trx) => {
      await trx.deleteFrom("tw_leases").where("connection_id", "=", id).execute();
      await trx.deleteFrom("tw_pending_authorizations").where("connection_id", "=", id).execute();
      const result = await trx.deleteFrom("tw_connections").where("id", "=", id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }

  async countConnectionsByStatus(): Promise<Partial<Record<ConnectionStatus, number>>> {
    const rows = await this.#db
      .selectFrom("tw_connections")
      .select(["status", ({ fn }) => fn.countAll<number>().as("n")])
      .groupBy("status")
      .execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  #summaryFrom(row: Selectable<ConnectionsTable>): ConnectionSummary {
    const document = JSON.parse(row.document) as Omit<
      Connection,
      "clientSecret" | "password" | "refreshToken"
    >;
    const secrets =
      row.sealed_secrets === null
        ? {}
        : (JSON.parse(
            this.#sealer.open(row.sealed_secrets, sealingContext.connectionSecrets(row.id)),
          ) as Partial<Connection>);
    const connection: Connection = { ...document };
    if (secrets.clientSecret !== undefined) connection.clientSecret = secrets.clientSecret;
    if (secrets.password !== undefined) connection.password = secrets.password;
    if (secrets.refreshToken !== undefined) connection.refreshToken = secrets.refreshToken;
    return {
      connection,
      state: {
        status: row.status as ConnectionStatus,
        expiresAt: numberOrNull(row.expires_at),
        nextRefreshAt: numberOrNull(row.next_refresh_at),
        lastRefreshAt: numberOrNull(row.last_refresh_at),
        failureCount: Number(row.failure_count),
        lastError: row.last_error === null ? null : (JSON.parse(row.last_error) as ErrorSummary),
        scope: row.scope,
        tokenVersion: Number(row.token_version),
      },
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
    };
  }

  /** Maps a state patch to columns; only the fields present are written. */
  #stateColumns(id: string, patch: StatePatch): Partial<ConnectionsTable> {
    const columns: Partial<ConnectionsTable> = {};
    if (patch.status !== undefined) columns.status = patch.status;
    if (patch.expiresAt !== undefined) columns.expires_at = patch.expiresAt;
    if (patch.nextRefreshAt !== undefined) columns.next_refresh_at = patch.nextRefreshAt;
    if (patch.lastRefreshAt !== undefined) columns.last_refresh_at = patch.lastRefreshAt;
    if (patch.failureCount !== undefined) columns.failure_count = patch.failureCount;
    if (patch.lastError !== undefined) {
      columns.last_error = patch.lastError === null ? null : JSON.stringify(patch.lastError);
    }
    if (patch.scope !== undefined) columns.scope = patch.scope;
    if (patch.token !== undefined) {
      columns.sealed_token =
        patch.token === null
          ? null
          : this.#sealer.seal(JSON.stringify(patch.token), sealingContext.connectionToken(id));
    }
    return columns;
  }

  async updateState(
    id: string,
    patch: StatePatch,
    now: number,
    expectedVersion?: number,
  ): Promise<number | undefined> {
    const columns = this.#stateColumns(id, patch);
    if (columns.sealed_token != null) await this.#recordKey();
    let query = this.#db
      .updateTable("tw_connections")
      .set({
        ...columns,
        updated_at: now,
        ...(patch.token === undefined ? {} : { token_version: sql<number>`token_version + 1` }),
      })
      .where("id", "=", id);
    if (expectedVersion !== undefined) query = query.where("token_version", "=", expectedVersion);
    const row = await query.returning("token_version").executeTakeFirst();
    if (row !== undefined) return Number(row.token_version);
    if (expectedVersion !== undefined && (await this.readTokenVersion(id)) !== undefined)
      return undefined;
    throw new TokenwardenError("not_found", `connection ${id} does not exist`);
  }

  async readTokenVersion(
    id: string,
  ): Promise<{ tokenVersion: number; status: ConnectionStatus } | undefined> {
    const row = await this.#db
      .selectFrom("tw_connections")
      .select(["token_version", "status"])
      .where("id", "=", id)
      .executeTakeFirst();
    return row === undefined
      ? undefined
      : { tokenVersion: Number(row.token_version), status: row.status as ConnectionStatus };
  }

  // Leases ------------------------------------------------------------------------

  async tryClaimLease(id: string, holder: string, until: number, now: number): Promise<boolean> {
    // One statement claims a free lease, takes over an expired one, or extends our
    // own; a live lease of another holder makes the conditional update a no-op and
    // RETURNING comes back empty.
    const row = await this.#db
      .insertInto("tw_leases")
      .values({ connection_id: id, holder, expires_at: until })
      .onConflict((oc) =>
        oc
          .column("connection_id")
          .doUpdateSet({ holder, expires_at: until })
          .where((eb) =>
            eb.or([eb("tw_leases.expires_at", "<=", now), eb("tw_leases.holder", "=", holder)]),
          ),
      )
      .returning("holder")
      .executeTakeFirst();
    return row !== undefined;
  }

  async releaseLease(id: string, holder: string): Promise<void> {
    await this.#db
      .deleteFrom("tw_leases")
      .where("connection_id", "=", id)
      .where("holder", "=", holder)
      .execute();
  }

  // Scheduler ---------------------------------------------------------------------

  async claimDueConnections(
    now: number,
    limit: number,
    until: number,
  ): Promise<Array<{ id: string; nextRefreshAt: number }>> {
    if (this.dialect === "postgres") {
      // One statement reads the due rows from the index and moves them out of the way;
      // SKIP LOCKED lets concurrent schedulers take disjoint rows without waiting.
      const result = await sql<{ id: string; next_refresh_at: number }>`
        with due as (
          select id, next_refresh_at from tw_connections
          where next_refresh_at <= ${now}
          order by next_refresh_at
          limit ${limit}
          for update skip locked
        )
        update tw_connections set next_refresh_at = ${until}
        from due where tw_connections.id = due.id
        returning tw_connections.id as id, due.next_refresh_at as next_refresh_at`.execute(
        this.#db,
      );
      return result.rows
        .map((r) => ({ id: r.id, nextRefreshAt: Number(r.next_refresh_at) }))
        .sort((x, y) => x.nextRefreshAt - y.nextRefreshAt);
    }
    // SQLite's RETURNING cannot name the CTE, so: read the due rows, then move those
    // still due. The update re-checks due-ness, so a row another process took in
    // between is not returned here.
    const due = await this.#db
      .selectFrom("tw_connections")
      .select(["id", "next_refresh_at"])
      .where("next_refresh_at", "<=", now)
      .orderBy("next_refresh_at")
      .limit(limit)
      .execute();
    if (due.length === 0) return [];
    const taken = await this.#db
      .updateTable("tw_connections")
      .set({ next_refresh_at: until })
      .where(
        "id",
        "in",
        due.map((r) => r.id),
      )
      .where("next_refresh_at", "<=", now)
      .returning("id")
      .execute();
    const ids = new Set(taken.map((r) => r.id));
    return due
      .filter((r) => ids.has(r.id))
      .map((r) => ({ id: r.id, nextRefreshAt: Number(r.next_refresh_at) }));
  }

  // API keys ----------------------------------------------------------------------

  async getLearnedClientAuth(integration: string): Promise<LearnedClientAuth | undefined> {
    const row = await this.#db
      .selectFrom("tw_client_auth_learned")
      .select(["token_url", "method"])
      .where("integration", "=", integration)
      .executeTakeFirst();
    return row === undefined ? undefined : { tokenUrl: row.token_url, method: row.method };
  }

  async putLearnedClientAuth(
    integration: string,
    learned: LearnedClientAuth,
    now: number,
  ): Promise<void> {
    const values = { token_url: learned.tokenUrl, method: learned.method, updated_at: now };
    await this.#db
      .insertInto("tw_client_auth_learned")
      .values({ integration, ...values })
      .onConflict((oc) => oc.column("integration").doUpdateSet(values))
      .execute();
  }

  async createApiKey(key: NewStoredApiKey, now: number): Promise<void> {
    await this.#db
      .insertInto("tw_api_keys")
      .values({
        id: key.id,
        name: key.name,
        hash: key.hash,
        role: key.role ?? "admin",
        integrations: listColumn(key.integrations),
        environments: listColumn(key.environments),
        created_at: now,
      })
      .execute();
  }

  async listApiKeys(): Promise<StoredApiKey[]> {
    const rows = await this.#db
      .selectFrom("tw_api_keys")
      .selectAll()
      .orderBy("created_at")
      .execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      hash: r.hash,
      // Anything but a known role is read as the narrower one.
      role: r.role === "admin" ? "admin" : "client",
      integrations: listOfColumn(r.integrations),
      environments: listOfColumn(r.environments),
      createdAt: Number(r.created_at),
    }));
  }

  async deleteApiKey(id: string): Promise<boolean> {
    const result = await this.#db.deleteFrom("tw_api_keys").where("id", "=", id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  // Change notifications ----------------------------------------------------------

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

  // Events ------------------------------------------------------------------------

  async appendEvent(event: NewTokenEvent): Promise<TokenEvent> {
    const row = await this.#db
      .insertInto("tw_events")
      .values({
        connection_id: event.connectionId,
        integration: event.integration,
        at: event.at,
        trigger: event.trigger,
        action: event.action,
        outcome: event.outcome,
        http_status: event.httpStatus,
        error_code: event.errorCode,
        error_description: event.errorDescription,
        duration_ms: Math.round(event.durationMs),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return eventFrom(row);
  }

  async listEvents(
    connectionId: string,
    options: { limit: number; beforeId?: number },
  ): Promise<TokenEvent[]> {
    let query = this.#db
      .selectFrom("tw_events")
      .selectAll()
      .where("connection_id", "=", connectionId)
      .orderBy("id", "desc")
      .limit(options.limit);
    if (options.beforeId !== undefined) query = query.where("id", "<", options.beforeId);
    return (await query.execute()).map(eventFrom);
  }

  async listEventsAfter(afterId: number, limit: number): Promise<TokenEvent[]> {
    const rows = await this.#db
      .selectFrom("tw_events")
      .selectAll()
      .where("id", ">", afterId)
      .orderBy("id", "asc")
      .limit(limit)
      .execute();
    return rows.map(eventFrom);
  }

  async lastEventId(): Promise<number> {
    const row = await this.#db
      .selectFrom("tw_events")
      .select((eb) => eb.fn.max("id").as("id"))
      .executeTakeFirst();
    return row?.id === null || row?.id === undefined ? 0 : Number(row.id);
  }

  // Pending authorizations --------------------------------------------------------

  async putPendingAuthorization(pending: PendingAuthorization): Promise<void> {
    if (pending.codeVerifier !== undefined) await this.#recordKey();
    await this.#db
      .insertInto("tw_pending_authorizations")
      .values({
        state_hash: hashState(pending.state),
        connection_id: pending.connectionId,
        sealed_code_verifier: this.#sealer.sealOptional(
          pending.codeVerifier,
          sealingContext.codeVerifier(pending.connectionId),
        ),
        redirect_uri: pending.redirectUri,
        expires_at: pending.expiresAt,
      })
      .execute();
  }

  async takePendingAuthorization(
    state: string,
    now: number,
  ): Promise<PendingAuthorization | undefined> {
    // Expired ones are swept here rather than by a timer.
    await this.#db.deleteFrom("tw_pending_authorizations").where("expires_at", "<=", now).execute();
    const row = await this.#db
      .deleteFrom("tw_pending_authorizations")
      .where("state_hash", "=", hashState(state))
      .returningAll()
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return {
      state,
      connectionId: row.connection_id,
      codeVerifier: this.#sealer.openOptional(
        row.sealed_code_verifier,
        sealingContext.codeVerifier(row.connection_id),
      ),
      redirectUri: row.redirect_uri,
      expiresAt: Number(row.expires_at),
    };
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

function eventFrom(row: Selectable<EventsTable>): TokenEvent {
  return {
    id: Number(row.id),
    at: new Date(Number(row.at)).toISOString(),
    connectionId: row.connection_id,
    integration: row.integration,
    trigger: row.trigger as EventTrigger,
    action: row.action as EventAction,
    outcome: row.outcome as EventOutcome,
    httpStatus: row.http_status,
    errorCode: row.error_code,
    errorDescription: row.error_description,
    durationMs: Number(row.duration_ms),
  };
}

function numberOrNull(value: number | null): number | null {
  return value === null ? null : Number(value);
}

function hashState(state: string): string {
  return createHash("sha256").update(state).digest("base64url");
}

/** A list limit as a JSON column; `null` (no limit) stays NULL. */
function listColumn(list: readonly string[] | null | undefined): string | null {
  return list === undefined || list === null ? null : JSON.stringify(list);
}

function listOfColumn(value: string | null): string[] | null {
  if (value === null) return null;
  const parsed: unknown = JSON.parse(value);
  // A limit that cannot be read limits to nothing rather than to everything.
  return Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === "string") : [];
}
