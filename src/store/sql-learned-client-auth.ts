/**
 * What `clientAuth: auto` learned (the `LearnedClientAuthStore` role): per integration,
 * the client authentication method its token endpoint accepted, and at which URL.
 */
import type { SqlContext } from "./sql-context.js";
import type { LearnedClientAuth, LearnedClientAuthStore } from "./store.js";

export class SqlLearnedClientAuth implements LearnedClientAuthStore {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async getLearnedClientAuth(integration: string): Promise<LearnedClientAuth | undefined> {
    const row = await this.#ctx.db
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
    await this.#ctx.db
      .insertInto("tw_client_auth_learned")
      .values({ integration, ...values })
      .onConflict((oc) => oc.column("integration").doUpdateSet(values))
      .execute();
  }
}
