/**
 * The SQLite engine under Kysely. Node.js 22 ships one (`node:sqlite`), which needs no
 * compiler and no per-Node-version binary, so it is preferred wherever it is complete
 * enough; better-sqlite3 (an optional dependency, compiled per Node ABI) is imported only
 * when the runtime has no usable `node:sqlite`, as on Node.js 20.
 */
import { type SqliteDatabase, SqliteDialect, type SqliteStatement } from "kysely";
import { invalidConfig } from "../core/errors.js";

export type SqliteDriverName = "node:sqlite" | "better-sqlite3";

export interface OpenedSqlite {
  database: SqliteDatabase;
  driver: SqliteDriverName;
}

export interface OpenSqliteOptions {
  /** Use this engine instead of the preferred one (for tests and comparisons). */
  driver?: SqliteDriverName;
  /** How long a write waits for another process's lock before SQLITE_BUSY (ms). */
  busyTimeoutMs?: number;
}

/** The Kysely dialect for the SQLite file at `path` (or `:memory:`). */
export async function sqliteDialect(
  path: string,
  options: OpenSqliteOptions = {},
): Promise<SqliteDialect> {
  const { database } = await openSqlite(path, options);
  return new SqliteDialect({ database });
}

/**
 * Opens and configures the database. Failures from either engine carry better-sqlite3's
 * `code` ("SQLITE_BUSY", "SQLITE_FULL"...), so callers tell them apart the same way.
 */
export async function openSqlite(
  path: string,
  options: OpenSqliteOptions = {},
): Promise<OpenedSqlite> {
  const nodeSqlite = options.driver === "better-sqlite3" ? undefined : loadNodeSqlite();
  let opened: OpenedSqlite;
  if (nodeSqlite !== undefined) {
    opened = {
      database: adaptNodeSqlite(nodeSqliteCall(() => new nodeSqlite.DatabaseSync(path))),
      driver: "node:sqlite",
    };
  } else if (options.driver === "node:sqlite") {
    throw invalidConfig(
      "database",
      `node:sqlite needs Node.js 22.16 or later (this is ${process.version})`,
    );
  } else {
    opened = { database: await openBetterSqlite3(path), driver: "better-sqlite3" };
  }
  try {
    configure(opened.database, options.busyTimeoutMs ?? 10_000);
  } catch (error) {
    opened.database.close();
    throw error;
  }
  return opened;
}

/**
 * WAL lets readers in other processes go on while one writes; the busy timeout makes a
 * writer wait for another process's write instead of failing.
 */
function configure(database: SqliteDatabase, busyTimeoutMs: number): void {
  for (const pragma of [
    "journal_mode = WAL",
    `busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`,
    "synchronous = NORMAL",
    "foreign_keys = ON",
  ]) {
    const statement = database.prepare(`PRAGMA ${pragma}`);
    if (statement.reader) statement.all([]);
    else statement.run([]);
  }
}

/** The part of `node:sqlite` used here (typed locally: @types/node 20 does not describe it). */
interface NodeSqliteStatement {
  all(...parameters: unknown[]): unknown[];
  iterate(...parameters: unknown[]): IterableIterator<unknown>;
  run(...parameters: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  columns(): unknown[];
}
interface NodeSqliteDatabase {
  prepare(sql: string): NodeSqliteStatement;
  close(): void;
}
interface NodeSqliteModule {
  DatabaseSync: new (path: string) => NodeSqliteDatabase;
}

/**
 * `node:sqlite` when the runtime has it with `StatementSync#columns()` (Node.js 22.16+),
 * which tells a statement that returns rows from one that does not, as Kysely needs.
 */
function loadNodeSqlite(): NodeSqliteModule | undefined {
  // Node.js 22 warns that SQLite is experimental when the module first loads. The
  // warning would land on every CLI command's stderr, so it alone is held back, only
  // for this synchronous load; every other warning passes through untouched.
  const emitWarning = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === "string" ? warning : warning.message;
    if (/SQLite is an experimental feature/.test(text)) return;
    (emitWarning as (w: string | Error, ...r: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    const module = process.getBuiltinModule?.("node:sqlite") as NodeSqliteModule | undefined;
    if (module === undefined) return undefined;
    const probe = new module.DatabaseSync(":memory:");
    try {
      return typeof probe.prepare("select 1").columns === "function" ? module : undefined;
    } finally {
      probe.close();
    }
  } finally {
    process.emitWarning = emitWarning;
  }
}

/** Kysely's SQLite driver speaks better-sqlite3's API; `node:sqlite` differs in two ways. */
function adaptNodeSqlite(db: NodeSqliteDatabase): SqliteDatabase {
  return {
    close: () => db.close(),
    prepare(sql: string): SqliteStatement {
      const statement = nodeSqliteCall(() => db.prepare(sql));
      return {
        // better-sqlite3 says whether a statement returns rows; here its columns tell.
        reader: statement.columns().length > 0,
        // better-sqlite3 takes the parameters as one array, node:sqlite as arguments.
        all: (parameters) => nodeSqliteCall(() => statement.all(...parameters)),
        run: (parameters) => nodeSqliteCall(() => statement.run(...parameters)),
        iterate: (parameters) => nodeSqliteCall(() => statement.iterate(...parameters)),
      };
    },
  };
}

/** An SQLite failure as better-sqlite3 reports it: the result code's name in `code`. */
export class SqliteError extends Error {
  readonly code: string;
  constructor(message: string, code: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SqliteError";
    this.code = code;
  }
}

/** SQLite's primary result codes (https://sqlite.org/rescode.html), by number. */
const RESULT_CODES = [
  "OK",
  "ERROR",
  "INTERNAL",
  "PERM",
  "ABORT",
  "BUSY",
  "LOCKED",
  "NOMEM",
  "READONLY",
  "INTERRUPT",
  "IOERR",
  "CORRUPT",
  "NOTFOUND",
  "FULL",
  "CANTOPEN",
  "PROTOCOL",
  "EMPTY",
  "SCHEMA",
  "TOOBIG",
  "CONSTRAINT",
  "MISMATCH",
  "MISUSE",
  "NOLFS",
  "AUTH",
  "FORMAT",
  "RANGE",
  "NOTADB",
  "NOTICE",
  "WARNING",
];

/** node:sqlite reports `code: "ERR_SQLITE_ERROR"` and the (extended) number in `errcode`. */
function nodeSqliteCall<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    const errcode = (error as { errcode?: unknown }).errcode;
    if (!(error instanceof Error) || typeof errcode !== "number") throw error;
    const name = RESULT_CODES[errcode & 0xff] ?? String(errcode);
    throw new SqliteError(error.message, `SQLITE_${name}`, { cause: error });
  }
}

async function openBetterSqlite3(path: string): Promise<SqliteDatabase> {
  const BetterSqlite3 = await importBetterSqlite3();
  return new BetterSqlite3(path);
}

async function importBetterSqlite3(): Promise<typeof import("better-sqlite3")> {
  try {
    const BetterSqlite3 = (await import("better-sqlite3")).default;
    // The native binding loads lazily, on the first database: try it here, so that
    // a missing or mismatched build is told apart from a file that cannot be opened.
    new BetterSqlite3(":memory:").close();
    return BetterSqlite3;
  } catch (error) {
    // Not installed (it is optional), or built for another Node.js version.
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw invalidConfig(
      "database",
      `SQLite needs Node.js 22.16 or later (node:sqlite), or the better-sqlite3 package built for this Node.js (npm install better-sqlite3; npm rebuild better-sqlite3): ${reason}`,
    );
  }
}
