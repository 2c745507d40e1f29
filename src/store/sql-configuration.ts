/**
 * Integrations and connections as configured (the `ConfigurationStore` role): one row
 * each, the document apart from its sealed secrets (sealed-rows.ts, connection-rows.ts).
 */
import { type Selectable, sql } from "kysely";
import type { Connection, ConnectionState } from "../core/connection.js";
import { TokenwardenError } from "../core/errors.js";
import type { Integration } from "../core/integration.js";
import type { StatePatch } from "../core/state.js";
import {
  connectionColumns,
  stateColumns,
  storedFromRow,
  summaryFromRow,
} from "./connection-rows.js";
import type { Database } from "./schema.js";
import { integrationColumns } from "./sealed-rows.js";
import { atomically, type SqlContext } from "./sql-context.js";
import type {
  ConfigurationStore,
  ConnectionFilter,
  ConnectionSummary,
  StoredConnection,
  StoredIntegration,
} from "./store.js";

export class SqlConfiguration implements ConfigurationStore {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  // Integrations ------------------------------------------------------------------

  async putIntegration(integration: Integration, now: number): Promise<{ created: boolean }> {
    const { sealedAny, ...columns } = integrationColumns(integration, this.#ctx.sealer);
    if (sealedAny) await this.#ctx.recordKey();
    const row = { key: integration.key, ...columns, created_at: now, updated_at: now };
    const result = await this.#ctx.db
      .insertInto("tw_integrations")
      .values(row)
      .onConflict((oc) => oc.column("key").doUpdateSet({ ...columns, updated_at: now }))
      .returning("created_at")
      .executeTakeFirstOrThrow();
    return { created: Number(result.created_at) === now };
  }

  async getIntegration(key: string): Promise<StoredIntegration | undefined> {
    const row = await this.#ctx.db
      .selectFrom("tw_integrations")
      .selectAll()
      .where("key", "=", key)
      .executeTakeFirst();
    return row === undefined ? undefined : this.#integrationFrom(row);
  }

  async listIntegrations(): Promise<StoredIntegration[]> {
    const rows = await this.#ctx.db
      .selectFrom("tw_integrations")
      .selectAll()
      .orderBy("key")
      .execute();
    return rows.map((row) => this.#integrationFrom(row));
  }

  async deleteIntegration(key: string): Promise<boolean> {
    return atomically(this.#ctx, async (trx) => {
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
      // Its MCP client (and that client's secret) goes with it.
      await trx.deleteFrom("tw_mcp_clients").where("integration", "=", key).execute();
      const result = await trx
        .deleteFrom("tw_integrations")
        .where("key", "=", key)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }

  #integrationFrom(row: Selectable<Database["tw_integrations"]>): StoredIntegration {
    return {
      integration: this.#ctx.integrations.read(row),
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
    const { sealer } = this.#ctx;
    const { sealedAny, ...configColumns } = connectionColumns(connection, sealer);
    const config = { ...configColumns, updated_at: now };
    const patchColumns = stateColumns(connection.id, statePatch, sealer);
    const insertColumns = stateColumns(connection.id, { ...initialState, ...statePatch }, sealer);
    if (sealedAny || insertColumns.sealed_token != null) await this.#ctx.recordKey();
    const result = await this.#ctx.db
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
    const row = await this.#ctx.db
      .selectFrom("tw_connections")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return storedFromRow(row, this.#ctx.sealer);
  }

  async listConnections(filter: ConnectionFilter = {}): Promise<ConnectionSummary[]> {
    let query = this.#ctx.db.selectFrom("tw_connections").selectAll().orderBy("id");
    if (filter.integration !== undefined)
      query = query.where("integration", "=", filter.integration);
    if (filter.status !== undefined) query = query.where("status", "=", filter.status);
    if (filter.environment !== undefined)
      query = query.where("environment", "=", filter.environment);
    const rows = await query.execute();
    return rows.map((row) => summaryFromRow(row, this.#ctx.sealer));
  }

  async deleteConnection(id: string): Promise<boolean> {
    return atomically(this.#ctx, async (trx) => {
      await trx.deleteFrom("tw_leases").where("connection_id", "=", id).execute();
      await trx.deleteFrom("tw_pending_authorizations").where("connection_id", "=", id).execute();
      const result = await trx.deleteFrom("tw_connections").where("id", "=", id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }
}
