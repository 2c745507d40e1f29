import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { invalidConfig } from "../core/errors.js";
import { loadOrCreateKeyFile, parseMasterKey, Sealer } from "./crypto.js";
import { migrateToLatest } from "./migrations.js";
import { PgChangeNotifier } from "./pg-notifier.js";
import type { Database } from "./schema.js";
import { SqlStore } from "./sql-store.js";
import { sqliteDialect } from "./sqlite-driver.js";
import type { Store } from "./store.js";

export const DEFAULT_DATABASE_URL = "sqlite:./data/tokenwarden.db";

export interface OpenStoreOptions {
  /** `sqlite:<path>` or `postgres://...` (also `postgresql://`). */
  database?: string;
  /** Master key, 32 bytes base64; for SQLite a key file beside the database is the default. */
  secretKey?: string;
  /** Older keys that still open values sealed before a rotation. */
  previousSecretKeys?: string[];
  /** PostgreSQL pool size. */
  poolSize?: number;
}

export type DatabaseLocation = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };

export function parseDatabaseUrl(database: string): DatabaseLocation {
  if (database.startsWith("sqlite:")) {
    const path = database.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "");
    if (path === "")
      throw invalidConfig(
        "database",
        "sqlite: needs a file path, e.g. sqlite:./data/tokenwarden.db",
      );
    return { kind: "sqlite", path: path === ":memory:" ? path : resolve(path) };
  }
  if (/^postgres(ql)?:\/\//.test(database)) return { kind: "postgres", url: database };
  throw invalidConfig("database", "must be sqlite:<path> or postgres://...");
}

/** Opens (and migrates) the store the URL names. */
export async function openStore(options: OpenStoreOptions = {}): Promise<Store> {
  const location = parseDatabaseUrl(options.database ?? DEFAULT_DATABASE_URL);
  const sealer = await sealerFor(location, options);
  if (location.kind === "sqlite") {
    if (location.path !== ":memory:") mkdirSync(dirname(location.path), { recursive: true });
    const db = new Kysely<Database>({ dialect: await sqliteDialect(location.path) });
    await migrateToLatest(db, "sqlite");
    return new SqlStore(db, "sqlite", sealer);
  }
  const pool = new pg.Pool({
    connectionString: location.url,
    max: options.poolSize ?? 10,
    // bigint columns hold epoch milliseconds, well inside a double's exact range.
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === pg.types.builtins.INT8
          ? (value: string) => Number(value)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  await migrateToLatest(db, "postgres");
  return new SqlStore(db, "postgres", sealer, new PgChangeNotifier(pool, location.url));
}

async function sealerFor(location: DatabaseLocation, options: OpenStoreOptions): Promise<Sealer> {
  const previous = (options.previousSecretKeys ?? []).map((k) => parseMasterKey(k));
  if (options.secretKey !== undefined)
    return new Sealer([parseMasterKey(options.secretKey), ...previous]);
  if (location.kind === "postgres") {
    throw invalidConfig("TOKENWARDEN_SECRET_KEY", "is required with PostgreSQL (32 bytes, base64)");
  }
  if (location.path === ":memory:") {
    throw invalidConfig("TOKENWARDEN_SECRET_KEY", "is required for an in-memory database");
  }
  return new Sealer([await loadOrCreateKeyFile(`${location.path}.key`), ...previous]);
}
