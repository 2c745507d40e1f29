/**
 * The store boundary: whatever the driver throws (a refused connection, a restarting
 * server, a statement timeout, a locked or full SQLite file) leaves the store as a
 * `storage_error`, so callers tell "the database is away" from a network failure at
 * an OAuth server or a bug, and the service answers 503 with a Retry-After.
 * Tokenwarden's own errors (not_found, conflict, a key that cannot open a value)
 * pass through unchanged.
 */
import { TokenwardenError } from "../core/errors.js";
import type { Store } from "./store.js";

/** Seconds a client is told to wait when the database is away (`Retry-After`). */
export const STORAGE_RETRY_AFTER_SECONDS = 5;

/** Node's socket errors: the database host is unreachable or the connection broke. */
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
]);

/** pg's own messages for a connection that is gone or never came. */
const PG_CLIENT_MESSAGES: ReadonlyArray<[RegExp, string]> = [
  [/connection timeout/, "no database connection within the connect timeout"],
  [/^Connection terminated/, "the connection to the database was lost"],
  [/timeout exceeded when trying to connect/, "no database connection within the connect timeout"],
  [/^Query read timeout/, "the database did not answer within the query timeout"],
  [/not queryable/, "the connection to the database was lost"],
];

function describe(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === "string") {
    if (SOCKET_CODES.has(code)) return `the database is unreachable (${code})`;
    // SQLSTATE classes (PostgreSQL appendix A).
    if (code.startsWith("08")) return `the connection to the database failed (${code})`;
    if (code === "57P01" || code === "57P02" || code === "57P03")
      return `the database is restarting or shutting down (${code})`;
    if (code === "57014") return "the database statement timed out (statement_timeout)";
    if (code === "25P03") return "the database ended an idle transaction (timeout)";
    if (code.startsWith("53")) return `the database is out of resources (${code}: ${message})`;
    if (code === "40001" || code === "40P01" || code === "55P03")
      return `the database could not take a lock in time (${code})`;
    // SQLite's extended result codes, as better-sqlite3 names them.
    if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"))
      return `the SQLite database is locked by another process beyond the busy timeout (${code})`;
    if (code === "SQLITE_FULL") return "the disk holding the SQLite database is full (SQLITE_FULL)";
    if (code.startsWith("SQLITE_IOERR"))
      return `the SQLite database file could not be read or written: disk full, permissions or hardware (${code})`;
    if (code.startsWith("SQLITE_READONLY"))
      return `the SQLite database file is read-only (${code})`;
    if (code === "SQLITE_CANTOPEN") return "the SQLite database file cannot be opened";
    if (code === "SQLITE_CORRUPT" || code === "SQLITE_NOTADB")
      return `the SQLite database file is damaged (${code})`;
  }
  for (const [pattern, text] of PG_CLIENT_MESSAGES) if (pattern.test(message)) return text;
  return `the database failed: ${message}${typeof code === "string" ? ` (${code})` : ""}`;
}

/** A driver failure as a `storage_error`; Tokenwarden's own errors are returned as they are. */
export function toStorageError(error: unknown): TokenwardenError {
  if (error instanceof TokenwardenError) return error;
  return new TokenwardenError("storage_error", describe(error), {
    retryAfterSeconds: STORAGE_RETRY_AFTER_SECONDS,
    cause: error,
  });
}

/**
 * The store with every method's failure passed through `toStorageError`. A Proxy
 * rather than a hand-written delegate per method: a method added to the Store later is
 * covered too.
 */
export function guardStore<T extends Store | object>(store: T): T {
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      if (property === "transaction") return guardedTransaction(target as Store);
      return (...args: unknown[]): unknown => {
        let result: unknown;
        try {
          result = value.apply(target, args);
        } catch (error) {
          throw toStorageError(error);
        }
        return result instanceof Promise
          ? result.catch((error: unknown) => {
              throw toStorageError(error);
            })
          : result;
      };
    },
  });
}

/** What `fn` itself threw inside a transaction, carried past the driver's rollback. */
class ThrownByWork {
  constructor(readonly error: unknown) {}
}

/**
 * A transaction whose work sees a guarded store too, so its driver failures become
 * `storage_error` where they happen; what the work throws of its own (a bug, a refusal)
 * leaves unchanged, and only a failure to begin or commit is the database's.
 */
function guardedTransaction(target: Store): Store["transaction"] {
  return async <T>(fn: (store: Store) => Promise<T>): Promise<T> => {
    try {
      return await target.transaction(async (trx) => {
        try {
          return await fn(guardStore(trx));
        } catch (error) {
          throw new ThrownByWork(error);
        }
      });
    } catch (error) {
      if (error instanceof ThrownByWork) throw error.error;
      throw toStorageError(error);
    }
  };
}
