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

/** What `tokenwarden key rotate` re-sealed. */
export interface RotationReport {
  /** The id of the key everything is now sealed under. */
  keyId: string;
  integrations: number;
  connectionSecrets: number;
  tokens: number;
  pendingAuthorizations: number;
  webhookSecrets?: number;
  deviceAuthorizations?: number;
  /** Secrets of clients registered at MCP servers' authorization servers. */
  mcpClientSecrets?: number;
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

    for (const row of await trx
      .selectFrom("tw_pending_authorizations")
      .select(["state_hash", "connection_id", "sealed_code_verifier"])
      .where("sealed_code_verifier", "is not", null)
      .execute()) {
      const context = sealingContext.codeVerifier(row.connection_id);
      await trx
        .updateTable("tw_pending_authorizations")
        .set({
          sealed_code_verifier: sealer.seal(
            sealer.open(row.sealed_code_verifier as string, context),
            context,
          ),
        })
        .where("state_hash", "=", row.state_hash)
        .execute();
      report.pendingAuthorizations += 1;
    }

    let deviceAuthorizations = 0;
    for (const row of await trx
      .selectFrom("tw_device_authorizations")
      .select(["connection_id", "sealed_device_code"])
      .execute()) {
      const context = sealingContext.deviceCode(row.connection_id);
      await trx
        .updateTable("tw_device_authorizations")
        .set({
          sealed_device_code: sealer.seal(sealer.open(row.sealed_device_code, context), context),
        })
        .where("connection_id", "=", row.connection_id)
        .execute();
      deviceAuthorizations += 1;
    }
    // Only when there are any, like webhook secrets below.
    if (deviceAuthorizations > 0) report.deviceAuthorizations = deviceAuthorizations;

    let webhookSecrets = 0;
    for (const row of await trx
      .selectFrom("tw_webhooks")
      .select(["id", "sealed_secret"])
      .execute()) {
      const context = webhookSecretContext(row.id);
      await trx
        .updateTable("tw_webhooks")
        .set({ sealed_secret: sealer.seal(sealer.open(row.sealed_secret, context), context) })
        .where("id", "=", row.id)
        .execute();
      webhookSecrets += 1;
    }
    // Only when there are any: reports from before webhooks keep their shape.
    if (webhookSecrets > 0) report.webhookSecrets = webhookSecrets;

    let mcpClientSecrets = 0;
    for (const row of await trx
      .selectFrom("tw_mcp_clients")
      .select(["integration", "sealed_client_secret"])
      .where("sealed_client_secret", "is not", null)
      .execute()) {
      const context = sealingContext.mcpClientSecret(row.integration);
      await trx
        .updateTable("tw_mcp_clients")
        .set({
          sealed_client_secret: sealer.seal(
            sealer.open(row.sealed_client_secret as string, context),
            context,
          ),
        })
        .where("integration", "=", row.integration)
        .execute();
      mcpClientSecrets += 1;
    }
    if (mcpClientSecrets > 0) report.mcpClientSecrets = mcpClientSecrets;

    const total =
      report.integrations +
      report.connectionSecrets +
      report.tokens +
      report.pendingAuthorizations +
      deviceAuthorizations +
      webhookSecrets +
      mcpClientSecrets;
    if (total > 0) await recordKeyId(trx, keyId);
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
