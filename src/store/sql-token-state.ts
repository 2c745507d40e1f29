/**
 * A connection's token and state as the broker moves it along, and the schedule
 * (the `TokenStateStore` role): conditional writes on the token version, the cheap
 * version poll, and the check-out of due connections that splits a cluster's work.
 */
import { sql } from "kysely";
import type { ConnectionStatus } from "../core/connection.js";
import { TokenwardenError } from "../core/errors.js";
import type { StatePatch } from "../core/state.js";
import { stateColumns } from "./connection-rows.js";
import { connectionStatus } from "./documents.js";
import type { SqlContext } from "./sql-context.js";
import type { TokenStateStore } from "./store.js";

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

  async claimDueConnections(
    now: number,
    limit: number,
    until: number,
  ): Promise<Array<{ id: string; nextRefreshAt: number }>> {
    const { db } = this.#ctx;
    if (this.#ctx.dialect === "postgres") {
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
        returning tw_connections.id as id, due.next_refresh_at as next_refresh_at`.execute(db);
      return result.rows
        .map((r) => ({ id: r.id, nextRefreshAt: Number(r.next_refresh_at) }))
        .sort((x, y) => x.nextRefreshAt - y.nextRefreshAt);
    }
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
      .returning("id")
      .execute();
    const ids = new Set(taken.map((r) => r.id));
    return due
      .filter((r) => ids.has(r.id))
      .map((r) => ({ id: r.id, nextRefreshAt: Number(r.next_refresh_at) }));
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
