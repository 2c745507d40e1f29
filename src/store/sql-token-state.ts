/**
 * A connection's token and state as the broker moves it along, and the schedule
 * (the `TokenStateStore` role): conditional writes on the token version, the cheap
 * version poll, the check-out of due connections that splits a cluster's work (with
 * the rows, so a scheduled renewal reads nothing more), and the batched renewal writes
 * (sql-renewals.ts).
 */
import { type Selectable, sql } from "kysely";
import type { ConnectionStatus } from "../core/connection.js";
import { TokenwardenError } from "../core/errors.js";
import type { Integration } from "../core/integration.js";
import type { StatePatch } from "../core/state.js";
import { stateColumns, storedFromRow } from "./connection-rows.js";
import { connectionStatus } from "./documents.js";
import type { ConnectionsTable } from "./schema.js";
import type { SqlContext } from "./sql-context.js";
import { writeRenewals } from "./sql-renewals.js";
import type { DueConnection, RenewalWrite, RenewalWritten, TokenStateStore } from "./store.js";

type ConnectionRow = Selectable<ConnectionsTable>;

export class SqlTokenState implements TokenStateStore {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async updateState(
    id: string,
    patch: StatePatch,
    now: number,
    expectedVersion?: number,
  ): Promise<number | undefined> {
    const columns = stateColumns(id, patch, this.#ctx.sealer);
    if (columns.sealed_token != null) await this.#ctx.recordKey();
    let query = this.#ctx.db
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
    const row = await this.#ctx.db
      .selectFrom("tw_connections")
      .select(["token_version", "status"])
      .where("id", "=", id)
      .executeTakeFirst();
    return row === undefined
      ? undefined
      : { tokenVersion: Number(row.token_version), status: connectionStatus(row.status, id) };
  }

  async claimDueConnections(now: number, limit: number, until: number): Promise<DueConnection[]> {
    const { db } = this.#ctx;
    let rows: Array<{ row: ConnectionRow; dueAt: number }>;
    if (this.#ctx.dialect === "postgres") {
      // One statement reads the due rows from the index and moves them out of the way;
      // SKIP LOCKED lets concurrent schedulers take disjoint rows without waiting. It
      // returns the whole rows, so the renewals need not read them again.
      const result = await sql<ConnectionRow & { due_at: number }>`
        with due as (
          select id, next_refresh_at from tw_connections
          where next_refresh_at <= ${now}
          order by next_refresh_at
          limit ${limit}
          for update skip locked
        )
        update tw_connections set next_refresh_at = ${until}
        from due where tw_connections.id = due.id
        returning tw_connections.*, due.next_refresh_at as due_at`.execute(db);
      rows = result.rows.map((row) => ({ row, dueAt: Number(row.due_at) }));
    } else {
      // SQLite's RETURNING cannot name the CTE, so: read the due rows, then move those
      // still due. The update re-checks due-ness, so a row another process took in
      // between is not returned here.
      const due = await db
        .selectFrom("tw_connections")
        .select(["id", "next_refresh_at"])
        .where("next_refresh_at", "<=", now)
        .orderBy("next_refresh_at")
        .limit(limit)
        .execute();
      if (due.length === 0) return [];
      const taken = await db
        .updateTable("tw_connections")
        .set({ next_refresh_at: until })
        .where(
          "id",
          "in",
          due.map((r) => r.id),
        )
        .where("next_refresh_at", "<=", now)
        .returningAll()
        .execute();
      const byId = new Map(taken.map((row) => [row.id, row]));
      rows = due.flatMap((r) => {
        const row = byId.get(r.id);
        return row === undefined ? [] : [{ row, dueAt: Number(r.next_refresh_at) }];
      });
    }
    if (rows.length === 0) return [];
    const integrations = await this.#integrationsOf(rows.map((r) => r.row.integration));
    return rows
      .sort((x, y) => x.dueAt - y.dueAt)
      .map(({ row, dueAt }) => ({
        id: row.id,
        nextRefreshAt: dueAt,
        loaded: this.#loaded(row, integrations.get(row.integration)),
      }));
  }

  /** The integrations of a batch, one read for all. */
  async #integrationsOf(keys: string[]): Promise<Map<string, Integration | undefined>> {
    const rows = await this.#ctx.db
      .selectFrom("tw_integrations")
      .selectAll()
      .where("key", "in", [...new Set(keys)])
      .execute();
    return new Map(
      rows.map((row) => {
        try {
          return [row.key, this.#ctx.integrations.read(row)];
        } catch {
          return [row.key, undefined]; // the renewal's own read tells what is wrong
        }
      }),
    );
  }

  #loaded(
    row: ConnectionRow,
    integration: Integration | undefined,
  ): DueConnection["loaded"] | undefined {
    if (integration === undefined) return undefined;
    try {
      return { stored: storedFromRow(row, this.#ctx.sealer), integration };
    } catch {
      return undefined; // a row that does not parse: the renewal reads it and fails as a read does
    }
  }

  async writeRenewals(
    writes: RenewalWrite[],
    now: number,
  ): Promise<Array<RenewalWritten | undefined>> {
    if (writes.length === 0) return [];
    await this.#ctx.recordKey();
    return writeRenewals(this.#ctx, writes, now);
  }

  async countConnectionsByStatus(): Promise<Partial<Record<ConnectionStatus, number>>> {
    const rows = await this.#ctx.db
      .selectFrom("tw_connections")
      .select(["status", ({ fn }) => fn.countAll<number>().as("n")])
      .groupBy("status")
      .execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }
}
