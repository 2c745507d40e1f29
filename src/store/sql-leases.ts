/**
 * The refresh lease (the `LeaseStore` role): one row per connection being renewed,
 * claimed and extended by conditional upserts so that no two holders have it at once.
 * The scheduler claims a batch's leases in one pass under one claim name, and keeps
 * them alive with one statement.
 */
import { sql } from "kysely";
import type { ConnectionStatus } from "../core/connection.js";
import { connectionStatus } from "./documents.js";
import type { SqlContext } from "./sql-context.js";
import type { LeaseStore } from "./store.js";

export class SqlLeases implements LeaseStore {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async tryClaimLease(id: string, holder: string, until: number, now: number): Promise<boolean> {
    // One statement claims a free lease, takes over an expired one, or extends our
    // own; a live lease of another holder makes the conditional update a no-op and
    // RETURNING comes back empty.
    const row = await this.#ctx.db
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

  async tryClaimLeases(
    ids: readonly string[],
    holder: string,
    until: number,
    now: number,
  ): Promise<Array<{ id: string; current?: { tokenVersion: number; status: ConnectionStatus } }>> {
    if (ids.length === 0) return [];
    const { db, dialect } = this.#ctx;
    // Sorted, so that two processes claiming overlapping batches lock rows in one order.
    const sorted = JSON.stringify([...ids].sort());
    // As tryClaimLease, row by row: free, expired or already this claim's. (`where
    // true` keeps SQLite from reading `on conflict` as part of the select.)
    const claim = (source: ReturnType<typeof sql>) => sql`
      insert into tw_leases (connection_id, holder, expires_at)
      select id, ${holder}, ${until} from (${source}) as ids where true
      on conflict (connection_id) do update set holder = excluded.holder,
        expires_at = excluded.expires_at
      where tw_leases.expires_at <= ${now} or tw_leases.holder = excluded.holder
      returning connection_id`;
    type Row = { id: string; token_version: number | null; status: string | null };
    let rows: Row[];
    if (dialect === "postgres") {
      // The state is read in the same statement, from a snapshot taken after any
      // holder that let the lease go had written: what it wrote shows here.
      const source = sql`select value as id from jsonb_array_elements_text(${sorted}::jsonb)`;
      rows = (
        await sql<Row>`
          with claimed as (${claim(source)})
          select claimed.connection_id as id, c.token_version, c.status
          from claimed left join tw_connections c on c.id = claimed.connection_id`.execute(db)
      ).rows;
    } else {
      // SQLite's RETURNING cannot feed a CTE: the state is read right after the claim.
      const source = sql`select value as id from json_each(${sorted})`;
      const claimed = (await sql<{ connection_id: string }>`${claim(source)}`.execute(db)).rows;
      if (claimed.length === 0) return [];
      const current = await db
        .selectFrom("tw_connections")
        .select(["id", "token_version", "status"])
        .where(
          "id",
          "in",
          claimed.map((r) => r.connection_id),
        )
        .execute();
      const byId = new Map(current.map((r) => [r.id, r]));
      rows = claimed.map((r) => ({
        id: r.connection_id,
        token_version: byId.get(r.connection_id)?.token_version ?? null,
        status: byId.get(r.connection_id)?.status ?? null,
      }));
    }
    return rows.map((row) =>
      row.token_version === null || row.status === null
        ? { id: row.id }
        : {
            id: row.id,
            current: {
              tokenVersion: Number(row.token_version),
              status: connectionStatus(row.status, row.id),
            },
          },
    );
  }

  async extendLeases(holder: string, until: number): Promise<void> {
    await this.#ctx.db
      .updateTable("tw_leases")
      .set({ expires_at: until })
      .where("holder", "=", holder)
      .execute();
  }

  async releaseLease(id: string, holder: string): Promise<void> {
    await this.#ctx.db
      .deleteFrom("tw_leases")
      .where("connection_id", "=", id)
      .where("holder", "=", holder)
      .execute();
  }
}
