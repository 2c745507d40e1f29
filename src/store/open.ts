import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect } from "kysely";
import pg from "pg";
import { invalidConfig } from "../core/errors.js";
import { loadOrCreateKeyFile, parseMasterKey, Sealer } from "./crypto.js";
import { migrateToLatest } from "./migrations.js";
import { PgChangeNotifier } from "./pg-notifier.js";
import type { Database } from "./schema.js";
import { SqlStore } from "./sql-store.js";
import { guardStore, toStorageError } from "./storage-errors.js";
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
  /** PostgreSQL: a connection not made within this fails with `storage_error` (ms). */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL: a statement running longer is cancelled by the server and fails with
   * `storage_error` (ms); the client gives up a little later if no answer comes at all.
   */
  statementTimeoutMs?: number;
  /** SQLite: how long a write waits for another process's lock before `storage_error` (ms). */
  busyTimeoutMs?: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000;
const DEFAULT_BUSY_TIMEOUT_MS = 10_000;

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
    const db = new Kysely<Database>({
      dialect: new SqliteDialect({
        database: async () =>
          openSqlite(location.path, options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS),
      }),
    });
    await migrate(db, "sqlite");
    return guardStore(new SqlStore(db, "sqlite", sealer));
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const statementTimeoutMs = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString: location.url,
    max: options.poolSize ?? 10,
    // Never a hang: connecting (or waiting for a pooled connection) is bounded, the
    // server cancels a long statement and ends a transaction left idle, and the client
    // gives up on a server that stopped answering at all (a broken network).
    connectionTimeoutMillis: connectTimeoutMs,
    statement_timeout: statementTimeoutMs,
    idle_in_transaction_session_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + connectTimeoutMs,
    keepAlive: true,
    // bigint columns hold epoch milliseconds, well inside a double's exact range.
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === pg.types.builtins.INT8
          ? (value: string) => Number(value)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // A pooled connection the server drops (a restart, a failover) emits 'error': on the
  // pool while idle, on the client while checked out. Either without a listener would
  // end the process. The pool discards such a connection by itself and the query that
  // was using it fails as a storage_error, so there is nothing more to do here.
  pool.on("error", () => undefined);
  pool.on("connect", (client) => client.on("error", () => undefined));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  await migrate(db, "postgres");
  const notifier = new PgChangeNotifier(pool, location.url, { connectTimeoutMs });
  return guardStore(new SqlStore(db, "postgres", sealer, notifier));
}

function openSqlite(path: string, busyTimeoutMs: number): BetterSqlite3.Database {
  try {
    const sqlite = new BetterSqlite3(path, { timeout: busyTimeoutMs });
    // WAL lets readers in other processes go on while one writes; the busy timeout
    // makes a writer wait for another process's write instead of failing at once.
    sqlite.pragma("journal_mode = WAL");
    sqlite.pragma("synchronous = NORMAL");
    sqlite.pragma("foreign_keys = ON");
    return sqlite;
  } catch (error) {
    throw toStorageError(error);
  }
}

/** Migrates, or closes what was opened and fails with a storage_error. */
async function migrate(db: Kysely<Database>, dialect: "sqlite" | "postgres"): Promise<void> {
  try {
    await migrateToLatest(db, dialect);
  } catch (error) {
    await db.destroy().catch(() => undefined);
    throw toStorageError(error);
  }
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
