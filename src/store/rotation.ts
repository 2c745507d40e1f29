import { type Kysely, sql } from "kysely";
import type { Sealer } from "./crypto.js";
import { recordKeyId } from "./master-key.js";
import type { Dialect } from "./migrations.js";
import type { Database } from "./schema.js";
import {
  integrationColumns,
  integrationFromColumns,
  needsSealing,
  sealingContext,
} from "./sealed-rows.js";
import { webhookSecretContext } from "./webhook-store.js";

/** What `tokenwarden key rotate` re-sealed: every kind of sealed value, counted, 0 included. */
export interface RotationReport {
  /** The id of the key everything is now sealed under. */
  keyId: string;
  integrations: number;
  connectionSecrets: number;
  tokens: number;
  /** Authorization code grants waiting for their callback (their PKCE verifiers). */
  pendingAuthorizations: number;
  /** Device grants being polled (their device codes). */
  deviceAuthorizations: number;
  webhookSecrets: number;
  /** Secrets of clients registered at MCP servers' authorization servers. */
  mcpClientSecrets: number;
}

const BATCH = 500;

/**
 * Re-seals every sealed value under the current key, in one transaction: either all
 * of them are, or none. Afterwards `tw_sealing_keys` names the current key alone, so
 * the old key can be dropped from the environment. Tokens keep their version: their
 * plaintext is unchanged, so no process needs to drop what it cached.
 */
export async function rotateSealedValues(
  db: Kysely<Database>,
  dialect: Dialect,
  sealer: Sealer,
): Promise<RotationReport> {
  const keyId = sealer.currentKeyId;
  return db.transaction().execute(async (trx) => {
    // Taken first: a process about to record another key id waits until this commits,
    // then records it again (master-key.ts).
    if (dialect === "postgres")
      await sql`lock table tw_sealing_keys in exclusive mode`.execute(trx);
    await trx.deleteFrom("tw_sealing_keys").where("key_id", "<>", keyId).execute();
    const report: RotationReport = {
      keyId,
      integrations: 0,
      connectionSecrets: 0,
      tokens: 0,
      pendingAuthorizations: 0,
      deviceAuthorizations: 0,
      webhookSecrets: 0,
      mcpClientSecrets: 0,
    };

    for (const row of await trx
      .selectFrom("tw_integrations")
      .select(["key", "document", "sealed_client_secret", "sealed_secrets"])
      .execute()) {
      const columns = integrationColumns(integrationFromColumns(row, sealer), sealer);
      if (!columns.sealedAny && row.sealed_secrets === null && row.sealed_client_secret === null)
        continue;
      const { sealedAny: _unused, ...values } = columns;
      await trx.updateTable("tw_integrations").set(values).where("key", "=", row.key).execute();
      report.integrations += 1;
    }

    let after = "";
    for (;;) {
      const rows = await trx
        .selectFrom("tw_connections")
        .select(["id", "sealed_secrets", "sealed_token"])
        .where("id", ">", after)
        .where((eb) =>
          eb.or([eb("sealed_secrets", "is not", null), eb("sealed_token", "is not", null)]),
        )
        .orderBy("id")
        .limit(BATCH)
        .execute();
      for (const row of rows) {
        const set: { sealed_secrets?: string; sealed_token?: string } = {};
        if (row.sealed_secrets !== null) {
          const context = sealingContext.connectionSecrets(row.id);
          set.sealed_secrets = sealer.seal(sealer.open(row.sealed_secrets, context), context);
          report.connectionSecrets += 1;
        }
        if (row.sealed_token !== null) {
          const context = sealingContext.connectionToken(row.id);
          set.sealed_token = sealer.seal(sealer.open(row.sealed_token, context), context);
          report.tokens += 1;
        }
        await trx.updateTable("tw_connections").set(set).where("id", "=", row.id).execute();
      }
      if (rows.length < BATCH) break;
      after = (rows[rows.length - 1] as { id: string }).id;
    }

    const reseal = (column: SealedColumn) => resealColumn(trx, sealer, column);
    report.pendingAuthorizations = await reseal({
      table: "tw_pending_authorizations",
      key: "state_hash",
      owner: "connection_id",
      sealed: "sealed_code_verifier",
      context: sealingContext.codeVerifier,
    });
    report.deviceAuthorizations = await reseal({
      table: "tw_device_authorizations",
      key: "connection_id",
      owner: "connection_id",
      sealed: "sealed_device_code",
      context: sealingContext.deviceCode,
    });
    report.webhookSecrets = await reseal({
      table: "tw_webhooks",
      key: "id",
      owner: "id",
      sealed: "sealed_secret",
      context: webhookSecretContext,
    });
    report.mcpClientSecrets = await reseal({
      table: "tw_mcp_clients",
      key: "integration",
      owner: "integration",
      sealed: "sealed_client_secret",
      context: sealingContext.mcpClientSecret,
    });

    const { keyId: _id, ...counts } = report;
    if (Object.values(counts).some((n) => n > 0)) await recordKeyId(trx, keyId);
    return report;
  });
}

/**
 * Rewrites the integrations stored before migration 0004 (a client secret sealed
 * alone, `tls.key` in the clear) the current way, so no private key stays in the
 * clear past the first open. Idempotent: several processes opening together each
 * find nothing left to do, or rewrite the same plaintext.
 */
export async function sealLegacyIntegrations(
  db: Kysely<Database>,
  sealer: Sealer,
): Promise<number> {
  const candidates = await db
    .selectFrom("tw_integrations")
    .select(["key", "document", "sealed_client_secret", "sealed_secrets"])
    .where("sealed_secrets", "is", null)
    .execute();
  const legacy = candidates.filter(needsSealing);
  if (legacy.length === 0) return 0;
  return db.transaction().execute(async (trx) => {
    await recordKeyId(trx, sealer.currentKeyId);
    let sealed = 0;
    for (const { key } of legacy) {
      const row = await trx
        .selectFrom("tw_integrations")
        .select(["key", "document", "sealed_client_secret", "sealed_secrets"])
        .where("key", "=", key)
        .executeTakeFirst();
      if (row === undefined || row.sealed_secrets !== null || !needsSealing(row)) continue;
      const { sealedAny: _unused, ...values } = integrationColumns(
        integrationFromColumns(row, sealer),
        sealer,
      );
      await trx.updateTable("tw_integrations").set(values).where("key", "=", key).execute();
      sealed += 1;
    }
    return sealed;
  });
}

/**
 * A table holding one sealed value per row: `key` picks the row, `owner` names what
 * the value is bound to (its sealing context). Names come from this module only.
 */
interface SealedColumn {
  table: keyof Database;
  key: string;
  owner: string;
  sealed: string;
  context: (owner: string) => string;
}

/** Opens and seals again, under the current key, every value of one sealed column. */
async function resealColumn(
  trx: Kysely<Database>,
  sealer: Sealer,
  column: SealedColumn,
): Promise<number> {
  const { rows } = await sql<{ key: string; owner: string; sealed: string }>`
    select ${sql.ref(column.key)} as key, ${sql.ref(column.owner)} as owner,
      ${sql.ref(column.sealed)} as sealed
    from ${sql.table(column.table)} where ${sql.ref(column.sealed)} is not null`.execute(trx);
  for (const row of rows) {
    const context = column.context(row.owner);
    const resealed = sealer.seal(sealer.open(row.sealed, context), context);
    await sql`update ${sql.table(column.table)} set ${sql.ref(column.sealed)} = ${resealed}
      where ${sql.ref(column.key)} = ${row.key}`.execute(trx);
  }
  return rows.length;
}
