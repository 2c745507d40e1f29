import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { afterEach, beforeEach, expect, it } from "vitest";
import { parseIntegration } from "../../src/core/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { toStorageError } from "../../src/store/storage-errors.js";
import { runProcess } from "../fixtures/cli.js";
import { sqliteDatabase, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import { openRawSqlite } from "../fixtures/raw-sqlite.js";
import { caught } from "../helpers.js";

let db: TestDatabase;
let path: string;
beforeEach(async () => {
  db = await sqliteDatabase();
  path = db.url.slice("sqlite:".length);
});
afterEach(() => db.drop());

const integration = (key: string) =>
  parseIntegration({
    key,
    grantType: "client_credentials",
    tokenUrl: "https://auth.example.com/token",
    clientId: "app",
  });

async function integrityOf(file: string): Promise<unknown> {
  const raw = await openRawSqlite(file);
  try {
    return raw.query("pragma integrity_check")[0]?.integrity_check;
  } finally {
    raw.close();
  }
}

/** Another process holding the write lock until told to let go. */
async function holdWriteLock(file: string): Promise<() => Promise<void>> {
  const child = spawn(
    process.execPath,
    [
      "-e",
      `const sqlite = process.getBuiltinModule?.("node:sqlite");
       const db = sqlite?.DatabaseSync
         ? new sqlite.DatabaseSync(process.argv[1])
         : new (require("better-sqlite3"))(process.argv[1]);
       db.exec("begin immediate");
       console.log("locked");
       process.stdin.once("data", () => { db.exec("rollback"); db.close(); process.exit(0); });`,
      file,
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout });
  await new Promise<void>((resolve, reject) => {
    lines.once("line", (line) => (line === "locked" ? resolve() : reject(new Error(line))));
    child.once("exit", (code) => reject(new Error(`lock holder exited (${code})`)));
  });
  return async () => {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.stdin.write("go\n");
    await exited;
  };
}

it("a write that waits on another process's lock beyond the busy timeout is a storage_error", async () => {
  let store: Store | undefined = await openStore({
    database: db.url,
    secretKey: TEST_SECRET_KEY,
    busyTimeoutMs: 200,
  });
  try {
    await store.putIntegration(integration("before"), 1);
    const release = await holdWriteLock(path);
    try {
      const error = await caught(() => (store as Store).putIntegration(integration("during"), 2));
      expect(error).toMatchObject({
        code: "storage_error",
        message:
          "the SQLite database is locked by another process beyond the busy timeout (SQLITE_BUSY)",
        retryAfterSeconds: 5,
      });
      // Reads go on meanwhile (WAL).
      expect((await store.getIntegration("before"))?.integration.key).toBe("before");
    } finally {
      await release();
    }
    await store.putIntegration(integration("after"), 3);
    expect((await store.listIntegrations()).map((i) => i.integration.key)).toEqual([
      "after",
      "before",
    ]);
    await store.close();
    store = undefined;
    expect(await integrityOf(path)).toBe("ok");
  } finally {
    await store?.close();
  }
});

it("a disk that refuses writes gives storage_error, and leaves a sound file with every write that succeeded", async () => {
  // The file-size limit makes the kernel refuse the write (EFBIG) as a full disk
  // would (ENOSPC), without a privileged mount; SIGXFSZ ignored so the write fails
  // rather than the process.
  const result = await runProcess(
    "bash",
    [
      "-c",
      'trap "" XFSZ; ulimit -f 512; exec "$0" --import tsx test/fixtures/sqlite-fill.ts "$1" "$2"',
      process.execPath,
      db.url,
      TEST_SECRET_KEY,
    ],
    { cwd: process.cwd() },
  );
  expect(result.code, result.stderr).toBe(0);
  const outcome = JSON.parse(result.stdout) as {
    written: number;
    code: string;
    message: string;
    again: string;
    readable: boolean;
  };
  expect(outcome.written).toBeGreaterThan(0);
  expect(outcome.code).toBe("storage_error");
  expect(outcome.message).toMatch(
    /^the SQLite database file could not be read or written: disk full, permissions or hardware \(SQLITE_IOERR|^the disk holding the SQLite database is full/,
  );
  expect(outcome.again).toBe("storage_error");
  expect(outcome.readable).toBe(true);
  // Without the limit: the file is sound and holds exactly what was reported written.
  expect(await integrityOf(path)).toBe("ok");
  const store = await openStore({ database: db.url, secretKey: TEST_SECRET_KEY });
  try {
    expect((await store.listEvents("c1", { limit: 500 })).length).toBe(
      Math.min(outcome.written, 500),
    );
  } finally {
    await store.close();
  }
});

it("SQLite's own full-database error reads as a full disk", async () => {
  const raw = await openRawSqlite(path);
  raw.query("pragma max_page_count = 8");
  raw.query("create table t (x text)");
  let thrown: unknown;
  try {
    for (let i = 0; i < 1000; i++) raw.query("insert into t values (?)", ["x".repeat(1000)]);
  } catch (error) {
    thrown = error;
  }
  raw.close();
  expect((thrown as { code?: string }).code).toBe("SQLITE_FULL");
  expect(toStorageError(thrown)).toMatchObject({
    code: "storage_error",
    message: "the disk holding the SQLite database is full (SQLITE_FULL)",
  });
  expect(await integrityOf(path)).toBe("ok");
});
