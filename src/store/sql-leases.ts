/**
 * The refresh lease (the `LeaseStore` role): one row per connection being renewed,
 * claimed and extended by conditional upserts so that no two holders have it at once.
 */
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

  async releaseLease(id: string, holder: string): Promise<void> {
    await this.#ctx.db
      .deleteFrom("tw_leases")
      .where("connection_id", "=", id)
      .where("holder", "=", holder)
      .execute();
  }
}
