/**
 * What every role of the SQL store shares (sql-store.ts composes them): the Kysely
 * instance, which is the database or the transaction the store is bound to, the
 * dialect, the sealer, the record of the sealing key, and the integrations parsed. A transaction gets a
 * context of its own, so each role's writes inside it land with the others'.
 */
import type { Kysely } from "kysely";
import type { Sealer } from "./crypto.js";
import type { IntegrationMemo } from "./integration-memo.js";
import type { Dialect } from "./migrations.js";
import type { Database } from "./schema.js";

export interface SqlContext {
  /** The database, or the transaction this store is bound to. */
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  readonly sealer: Sealer;
  /** Whether `db` is a transaction: work that must be atomic joins it. */
  readonly inTransaction: boolean;
  /**
   * Records the current key id before a value sealed under it is written, so a later
   * start with another key is refused (master-key.ts).
   */
  recordKey(): Promise<void>;
  /** Integrations parsed so far, shared by the store and its transactions. */
  readonly integrations: IntegrationMemo;
}

/** Runs `fn` in a transaction, or in the one the context is bound to. */
export function atomically<T>(
  ctx: SqlContext,
  fn: (db: Kysely<Database>) => Promise<T>,
): Promise<T> {
  return ctx.inTransaction ? fn(ctx.db) : ctx.db.transaction().execute(fn);
}
