import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from "kysely";
import { TokenwardenError } from "../core/errors.js";
import { lifecycleMigration } from "./lifecycle-migration.js";
import type { Database } from "./schema.js";

export type Dialect = "sqlite" | "postgres";

/**
 * Versioned migrations, kept in code (not files) so that the built package carries
 * them. They run on open, under Kysely's migration lock, so several processes
 * starting together migrate once. Never edit a released migration: add the next one.
 */
function migrations(dialect: Dialect): Record<string, Migration> {
  const bigint = dialect === "postgres" ? "bigint" : "integer";
  return {
    "0001_initial": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("tw_integrations")
          .addColumn("key", "text", (c) => c.primaryKey())
          .addColumn("document", "text", (c) => c.notNull())
          .addColumn("sealed_client_secret", "text")
          .addColumn("created_at", bigint, (c) => c.notNull())
          .addColumn("updated_at", bigint, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("tw_connections")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("integration", "text", (c) => c.notNull().references("tw_integrations.key"))
          .addColumn("environment", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("document", "text", (c) => c.notNull())
          .addColumn("sealed_secrets", "text")
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("sealed_token", "text")
          .addColumn("token_version", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("expires_at", bigint)
          .addColumn("next_refresh_at", bigint)
          .addColumn("last_refresh_at", bigint)
          .addColumn("failure_count", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("last_error", "text")
          .addColumn("scope", "text")
          .addColumn("created_at", bigint, (c) => c.notNull())
          .addColumn("updated_at", bigint, (c) => c.notNull())
          .execute();
        // The scheduler's only query walks this index: no full scan per tick.
        await db.schema
          .createIndex("tw_connections_next_refresh")
          .on("tw_connections")
          .column("next_refresh_at")
          .execute();
        await db.schema
          .createIndex("tw_connections_integration")
          .on("tw_connections")
          .column("integration")
          .execute();
        await db.schema
          .createTable("tw_leases")
          .addColumn("connection_id", "text", (c) => c.primaryKey())
          .addColumn("holder", "text", (c) => c.notNull())
          .addColumn("expires_at", bigint, (c) => c.notNull())
          .execute();
        let events = db.schema.createTable("tw_events");
        events =
          dialect === "postgres"
            ? events.addColumn("id", "bigint", (c) => c.primaryKey().generatedAlwaysAsIdentity())
            : events.addColumn("id", "integer", (c) => c.primaryKey().autoIncrement());
        await events
          .addColumn("connection_id", "text", (c) => c.notNull())
          .addColumn("integration", "text", (c) => c.notNull())
          .addColumn("at", bigint, (c) => c.notNull())
          .addColumn("trigger", "text", (c) => c.notNull())
          .addColumn("action", "text", (c) => c.notNull())
          .addColumn("outcome", "text", (c) => c.notNull())
          .addColumn("http_status", "integer")
          .addColumn("error_code", "text")
          .addColumn("error_description", "text")
          .addColumn("duration_ms", "integer", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("tw_events_connection")
          .on("tw_events")
          .columns(["connection_id", "id"])
          .execute();
        await db.schema
          .createTable("tw_pending_authorizations")
          .addColumn("state_hash", "text", (c) => c.primaryKey())
          .addColumn("connection_id", "text", (c) => c.notNull())
          .addColumn("sealed_code_verifier", "text")
          .addColumn("redirect_uri", "text", (c) => c.notNull())
          .addColumn("expires_at", bigint, (c) => c.notNull())
          .execute();
      },
    },
    "0002_api_keys": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("tw_api_keys")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("hash", "text", (c) => c.notNull().unique())
          .addColumn("created_at", bigint, (c) => c.notNull())
          .execute();
      },
    },
    "0003_api_key_roles": {
      async up(db: Kysely<unknown>) {
        // Every key made before roles existed could do everything: it stays admin.
        await db.schema
          .alterTable("tw_api_keys")
          .addColumn("role", "text", (c) => c.notNull().defaultTo("admin"))
          .execute();
        // JSON lists; NULL means no limit.
        await db.schema.alterTable("tw_api_keys").addColumn("integrations", "text").execute();
        await db.schema.alterTable("tw_api_keys").addColumn("environments", "text").execute();
      },
    },
    "0004_sealed_secrets_and_key_ids": {
      async up(db: Kysely<unknown>) {
        // Every integration secret (client secret, tls.key, later private keys) in one
        // sealed JSON; rows written before keep sealed_client_secret and a tls.key in
        // the clear until the store seals them (SqlStore.sealLegacySecrets).
        await db.schema.alterTable("tw_integrations").addColumn("sealed_secrets", "text").execute();
        // The ids of the keys values are sealed under, so that opening with a wrong
        // key is refused at start without reading every row (master-key.ts).
        await db.schema
          .createTable("tw_sealing_keys")
          .addColumn("key_id", "text", (c) => c.primaryKey())
          .execute();
        for (const [table, column] of SEALED_COLUMNS) {
          // `tw1.` is 4 characters and a key id 12: substr is the same on both dialects.
          await sql`
            insert into tw_sealing_keys (key_id)
            select distinct substr(${sql.ref(column)}, 5, 12) from ${sql.table(table)}
            where ${sql.ref(column)} like 'tw1.%'
            on conflict (key_id) do nothing`.execute(db);
        }
      },
    },
    "0006_lifecycle": { up: (db: Kysely<unknown>) => lifecycleMigration(db, dialect) },
    "0007_protocol_a": {
      async up(db: Kysely<unknown>) {
        // No foreign key: a learned method outlives nothing it depends on (it is
        // checked against the token URL it was learned at).
        await db.schema
          .createTable("tw_client_auth_learned")
          .addColumn("integration", "text", (c) => c.primaryKey())
          .addColumn("token_url", "text", (c) => c.notNull())
          .addColumn("method", "text", (c) => c.notNull())
          .addColumn("updated_at", bigint, (c) => c.notNull())
          .execute();
      },
    },
    "0008_protocol_b": {
      async up(db: Kysely<unknown>) {
        // Per-connection rate limits shared by every process (rate-limit.ts): the calls
        // counted in the current window, and how long an API's Retry-After holds calls.
        await db.schema
          .createTable("tw_rate_limits")
          .addColumn("connection_id", "text", (c) => c.primaryKey())
          .addColumn("window_start", bigint, (c) => c.notNull())
          .addColumn("count", "integer", (c) => c.notNull())
          .addColumn("held_until", bigint, (c) => c.notNull().defaultTo(0))
          .execute();
      },
    },
    "0009_device_authorizations": {
      async up(db: Kysely<unknown>) {
        // Device flows waiting for approval, so that any process (or the next one after
        // a restart) goes on polling them. No foreign key: a flow of a deleted
        // connection ends at its next poll.
        await db.schema
          .createTable("tw_device_authorizations")
          .addColumn("connection_id", "text", (c) => c.primaryKey())
          .addColumn("flow_id", "text", (c) => c.notNull())
          .addColumn("sealed_device_code", "text", (c) => c.notNull())
          .addColumn("expires_at", bigint, (c) => c.notNull())
          .addColumn("interval_ms", "integer", (c) => c.notNull())
          .addColumn("next_poll_at", bigint, (c) => c.notNull())
          .execute();
      },
    },
    "0011_mcp_clients": {
      async up(db: Kysely<unknown>) {
        // The client registered (or described by a metadata document) at an MCP
        // server's authorization server, per integration; its secret sealed. No
        // foreign key: the integration's deletion removes it (sql-configuration.ts).
        await db.schema
          .createTable("tw_mcp_clients")
          .addColumn("integration", "text", (c) => c.primaryKey())
          .addColumn("issuer", "text", (c) => c.notNull())
          .addColumn("client_id", "text", (c) => c.notNull())
          .addColumn("kind", "text", (c) => c.notNull())
          .addColumn("client_auth", "text", (c) => c.notNull())
          .addColumn("sealed_client_secret", "text")
          .addColumn("redirect_uris", "text", (c) => c.notNull())
          .addColumn("updated_at", bigint, (c) => c.notNull())
          .execute();
      },
    },
  };
}

/** Every column that holds a sealed value (crypto.ts), as of migration 0004. */
export const SEALED_COLUMNS = [
  ["tw_integrations", "sealed_client_secret"],
  ["tw_connections", "sealed_secrets"],
  ["tw_connections", "sealed_token"],
  ["tw_pending_authorizations", "sealed_code_verifier"],
] as const;

export async function migrateToLatest(db: Kysely<Database>, dialect: Dialect): Promise<void> {
  const provider: MigrationProvider = { getMigrations: async () => migrations(dialect) };
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: "tw_migrations",
    migrationLockTableName: "tw_migrations_lock",
    // 0003 and 0004 were written side by side and touch different tables: a database
    // that got 0004 first still takes 0003 after it.
    allowUnorderedMigrations: true,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new TokenwardenError(
      "invalid_config",
      `database migration ${failed} failed: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** Names of the migrations this build knows, and whether the database has them all. */
export async function migrationsComplete(db: Kysely<Database>, dialect: Dialect): Promise<boolean> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations(dialect) },
    migrationTableName: "tw_migrations",
    migrationLockTableName: "tw_migrations_lock",
  });
  const all = await migrator.getMigrations();
  return all.every((m) => m.executedAt !== undefined);
}

/**
 * Migrates up to and including `name` only: for tests that build a database as an
 * older version left it, and check that this one opens it.
 */
export async function migrateUpTo(
  db: Kysely<Database>,
  dialect: Dialect,
  name: string,
): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations(dialect) },
    migrationTableName: "tw_migrations",
    migrationLockTableName: "tw_migrations_lock",
  });
  const { error } = await migrator.migrateTo(name);
  if (error !== undefined) throw error;
}
