/**
 * 0006_lifecycle: webhook endpoints and their outbox, connect sessions, and the
 * refresh token's end on connections.
 */
import type { Kysely } from "kysely";
import type { Dialect } from "./migrations.js";

export async function lifecycleMigration(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const bigint = dialect === "postgres" ? "bigint" : "integer";
  for (const column of [
    "refresh_token_expires_at",
    "refresh_token_warn_at",
    "refresh_token_warned_for",
  ]) {
    await db.schema.alterTable("tw_connections").addColumn(column, bigint).execute();
  }
  // The warning sweep walks this index, as the scheduler walks next_refresh_at.
  await db.schema
    .createIndex("tw_connections_refresh_token_warn")
    .on("tw_connections")
    .column("refresh_token_warn_at")
    .execute();

  await db.schema
    .createTable("tw_webhooks")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("url", "text", (c) => c.notNull())
    .addColumn("events", "text", (c) => c.notNull())
    .addColumn("enabled", "integer", (c) => c.notNull().defaultTo(1))
    .addColumn("sealed_secret", "text", (c) => c.notNull())
    .addColumn("created_at", bigint, (c) => c.notNull())
    .addColumn("updated_at", bigint, (c) => c.notNull())
    .execute();

  let deliveries = db.schema.createTable("tw_webhook_deliveries");
  deliveries =
    dialect === "postgres"
      ? deliveries.addColumn("id", "bigint", (c) => c.primaryKey().generatedAlwaysAsIdentity())
      : deliveries.addColumn("id", "integer", (c) => c.primaryKey().autoIncrement());
  await deliveries
    .addColumn("message_id", "text", (c) => c.notNull())
    .addColumn("webhook_id", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("connection_id", "text", (c) => c.notNull())
    .addColumn("payload", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("next_attempt_at", bigint)
    .addColumn("lease_holder", "text")
    .addColumn("created_at", bigint, (c) => c.notNull())
    .addColumn("last_attempt_at", bigint)
    .addColumn("last_http_status", "integer")
    .addColumn("last_error", "text")
    .addColumn("delivered_at", bigint)
    .execute();
  // The dispatcher's only query walks this index (NULL once a delivery is done).
  await db.schema
    .createIndex("tw_webhook_deliveries_due")
    .on("tw_webhook_deliveries")
    .column("next_attempt_at")
    .execute();
  await db.schema
    .createIndex("tw_webhook_deliveries_webhook")
    .on("tw_webhook_deliveries")
    .columns(["webhook_id", "id"])
    .execute();

  await db.schema
    .createTable("tw_connect_sessions")
    .addColumn("token_hash", "text", (c) => c.primaryKey())
    .addColumn("connection_id", "text", (c) => c.notNull())
    .addColumn("integration", "text", (c) => c.notNull())
    .addColumn("environment", "text", (c) => c.notNull())
    .addColumn("parameters", "text", (c) => c.notNull())
    .addColumn("creates", "integer", (c) => c.notNull())
    .addColumn("return_url", "text")
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("state_hash", "text")
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("expires_at", bigint, (c) => c.notNull())
    .addColumn("created_at", bigint, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("tw_connect_sessions_state")
    .on("tw_connect_sessions")
    .column("state_hash")
    .execute();
}
