/**
 * Authorization-code flows between the redirect and the callback (the
 * `PendingAuthorizationStore` role): kept by the hash of their state, the PKCE code
 * verifier sealed, each taken once.
 */
import { createHash } from "node:crypto";
import { sealingContext } from "./sealed-rows.js";
import type { SqlContext } from "./sql-context.js";
import type { PendingAuthorization, PendingAuthorizationStore } from "./store.js";

export class SqlPendingAuthorizations implements PendingAuthorizationStore {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async putPendingAuthorization(pending: PendingAuthorization): Promise<void> {
    if (pending.codeVerifier !== undefined) await this.#ctx.recordKey();
    await this.#ctx.db
      .insertInto("tw_pending_authorizations")
      .values({
        state_hash: hashState(pending.state),
        connection_id: pending.connectionId,
        sealed_code_verifier: this.#ctx.sealer.sealOptional(
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
    const { db } = this.#ctx;
    // Expired ones are swept here rather than by a timer.
    await db.deleteFrom("tw_pending_authorizations").where("expires_at", "<=", now).execute();
    const row = await db
      .deleteFrom("tw_pending_authorizations")
      .where("state_hash", "=", hashState(state))
      .returningAll()
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return {
      state,
      connectionId: row.connection_id,
      codeVerifier: this.#ctx.sealer.openOptional(
        row.sealed_code_verifier,
        sealingContext.codeVerifier(row.connection_id),
      ),
      redirectUri: row.redirect_uri,
      expiresAt: Number(row.expires_at),
    };
  }
}

function hashState(state: string): string {
  return createHash("sha256").update(state).digest("base64url");
}
