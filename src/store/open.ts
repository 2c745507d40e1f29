import { resolve } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect } from "kysely";
import pg from "pg";
import { invalidConfig } from "../core/errors.js";
import { preparePrivateDatabaseFile } from "./files.js";
import { keyIdsInUse, masterKeysFrom, sealerFor } from "./master-key.js";
import { type Dialect, migrateToLatest } from "./migrations.js";
import { PgChangeNotifier } from "./pg-notifier.js";
import type { Database } from "./schema.js";
import { SqlStore } from "./sql-store.js";
import type { Store } from "./store.js";

export const DEFAULT_DATABASE_URL = "sqlite:./data/tokenwarden.db";

export interface OpenStoreOptions {
  /** `sqlite:<path>` or `postgres://...` (also `postgresql://`). */
  database?: string;
  /**
   * Master key, 32 bytes base64. Left out: `TOKENWARDEN_SECRET_KEY` (and
   * `TOKENWARDEN_PREVIOUS_SECRET_KEYS`) from the environment, else for SQLite a key
   * file beside the database.
   */
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

/**
 * Opens (and migrates) the store the URL names, then checks the master key against
 * the key ids the database's sealed values need (master-key.ts): a wrong key is
 * refused here, before anything is served or sealed.
 */
export async function openStore(options: OpenStoreOptions = {}): Promise<Store> {
  const location = parseDatabaseUrl(options.database ?? DEFAULT_DATABASE_URL);
  const keys = masterKeysFrom(options);
  if (location.kind === "sqlite") {
    if (location.path !== ":memory:") preparePrivateDatabaseFile(location.path);
    const sqlite = new BetterSqlite3(location.path);
    // WAL lets readers in other processes go on while one writes; the busy timeout
    // makes a writer wait for another process's write instead of failing.
    sqlite.pragma("journal_mode = WAL");
    sqlite.pragma("busy_timeout = 10000");
    sqlite.pragma("synchronous = NORMAL");
    sqlite.pragma("foreign_keys = ON");
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
    return checked(db, "sqlite", location, keys);
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
  return checked(db, "postgres", location, keys, () => new PgChangeNotifier(pool, location.url));
}

/** Migrates, checks the key, seals what older versions left in the clear; closes on failure. */
async function checked(
  db: Kysely<Database>,
  dialect: Dialect,
  location: DatabaseLocation,
  keys: ReturnType<typeof masterKeysFrom>,
  notifier?: () => PgChangeNotifier,
): Promise<Store> {
  try {
    await migrateToLatest(db, dialect);
    const sealer = await sealerFor(location, keys, await keyIdsInUse(db));
    const store = new SqlStore(db, dialect, sealer, notifier?.());
    await store.sealLegacySecrets();
    return store;
  } catch (error) {
    await db.destroy();
    throw error;
  }
}
