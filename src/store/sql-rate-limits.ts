/**
 * Per-connection rate limits (the `RateLimitStore` role): one row per connection with
 * the calls counted in the current window and how long an API's Retry-After holds
 * calls, written by conditional upserts so every process on the database shares them.
 */
import { sql } from "kysely";
import type { SqlContext } from "./sql-context.js";
import type { RateLimitStore } from "./store.js";

export class SqlRateLimits implements RateLimitStore {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async takeRateSlot(connectionId: string, windowStart: number, limit: number): Promise<boolean> {
    // One conditional upsert: a newer window starts over at 1, the current one counts
    // up to the limit, and a full one leaves the row alone (RETURNING comes back empty).
    const row = await this.#ctx.db
      .insertInto("tw_rate_limits")
      .values({ connection_id: connectionId, window_start: windowStart, count: 1, held_until: 0 })
      .onConflict((oc) =>
        oc
          .column("connection_id")
          .doUpdateSet({
            window_start: sql<number>`case when excluded.window_start > tw_rate_limits.window_start then excluded.window_start else tw_rate_limits.window_start end`,
            count: sql<number>`case when excluded.window_start > tw_rate_limits.window_start then 1 else tw_rate_limits.count + 1 end`,
          })
          .where((eb) =>
            eb.or([
              eb("excluded.window_start", ">", eb.ref("tw_rate_limits.window_start")),
              eb("tw_rate_limits.count", "<", limit),
            ]),
          ),
      )
      .returning("count")
      .executeTakeFirst();
    return row !== undefined;
  }

  async holdCalls(connectionId: string, until: number): Promise<void> {
    await this.#ctx.db
      .insertInto("tw_rate_limits")
      .values({ connection_id: connectionId, window_start: 0, count: 0, held_until: until })
      .onConflict((oc) =>
        oc
          .column("connection_id")
          .doUpdateSet({ held_until: until })
          .where("tw_rate_limits.held_until", "<", until),
      )
      .execute();
  }

  async callsHeldUntil(connectionId: string): Promise<number> {
    const row = await this.#ctx.db
      .selectFrom("tw_rate_limits")
      .select("held_until")
      .where("connection_id", "=", connectionId)
      .executeTakeFirst();
    return row === undefined ? 0 : Number(row.held_until);
  }
}
