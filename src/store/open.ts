import { resolve } from "node:path";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { invalidConfig } from "../core/errors.js";
import { preparePrivateDatabaseFile } from "./files.js";
import { keyIdsInUse, masterKeysFrom, sealerFor } from "./master-key.js";
import { type Dialect, migrateToLatest } from "./migrations.js";
import { PgChangeNotifier } from "./pg-notifier.js";
import type { Database } from "./schema.js";
import { SqlStore } from "./sql-store.js";
import { sqliteDialect } from "./sqlite-driver.js";
import { guardStore, toStorageError } from "./storage-errors.js";
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
    let dialect: Awaited<ReturnType<typeof sqliteDialect>>;
    try {
      dialect = await sqliteDialect(location.path, {
        busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
      });
    } catch (error) {
      throw toStorageError(error);
    }
    return checked(new Kysely<Database>({ dialect }), "sqlite", location, keys);
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
  return checked(
    db,
    "postgres",
    location,
    keys,
    () => new PgChangeNotifier(pool, location.url, { connectTimeoutMs }),
  );
}

/**
 * Migrates, checks the key, seals what older versions left in the clear; on failure
 * closes what was opened and fails with a storage_error (or the key's own refusal).
 */
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
    return guardStore(store);
  } catch (error) {
    await db.destroy().catch(() => undefined);
    throw toStorageError(error);
  }
}
