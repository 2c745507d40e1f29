import { Kysely, SqliteDialect, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSqlite, type SqliteDriverName } from "../../src/store/sqlite-driver.js";
import { sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";

/** Node.js 22.16 is the first with an unflagged node:sqlite that has StatementSync#columns(). */
function runtimeHasNodeSqlite(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  return major > 22 || (major === 22 && minor >= 16);
}

/** Whether better-sqlite3 is installed and built for this Node.js (it is compiled per ABI). */
async function betterSqlite3Loads(): Promise<boolean> {
  try {
    const BetterSqlite3 = (await import("better-sqlite3")).default;
    new BetterSqlite3(":memory:").close();
    return true;
  } catch {
    return false;
  }
}

interface Row {
  id: number;
  name: string;
}

/** What Kysely and the store rely on, through each engine. */
function roundTrip(driver: SqliteDriverName) {
  return async () => {
    const file = await sqliteDatabase();
    const opened = await openSqlite(file.files[0] as string, { driver });
    expect(opened.driver).toBe(driver);
    const db = new Kysely<{ t: Row }>({
      dialect: new SqliteDialect({ database: opened.database }),
    });
    try {
      await sql`create table t (id integer primary key, name text not null)`.execute(db);
      const inserted = await db
        .insertInto("t")
        .values([
          { id: 1, name: "a" },
          { id: 2, name: "b" },
        ])
        .returning("id")
        .execute();
      expect(inserted.map((r) => r.id)).toEqual([1, 2]);
      const updated = await db.updateTable("t").set({ name: "c" }).where("id", "=", 2).execute();
      expect(updated[0]?.numUpdatedRows).toBe(1n);
      await expect(
        db.transaction().execute(async (tx) => {
          await tx.deleteFrom("t").execute();
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      const streamed: Row[] = [];
      for await (const row of db.selectFrom("t").selectAll().orderBy("id").stream()) {
        streamed.push({ ...row });
      }
      expect(streamed).toEqual([
        { id: 1, name: "a" },
        { id: 2, name: "c" },
      ]);
      await expect(
        db.insertInto("t").values({ id: 1, name: "again" }).execute(),
      ).rejects.toMatchObject({ code: expect.stringMatching(/^SQLITE_CONSTRAINT/) });
      // While this connection holds the write lock, another one with no busy timeout
      // fails at once with SQLITE_BUSY, named as better-sqlite3 names it.
      const other = await openSqlite(file.files[0] as string, { driver, busyTimeoutMs: 0 });
      await sql`BEGIN IMMEDIATE`.execute(db);
      try {
        expect(() => other.database.prepare("BEGIN IMMEDIATE").run([])).toThrow(
          expect.objectContaining({ code: expect.stringMatching(/^SQLITE_BUSY/) }),
        );
      } finally {
        await sql`ROLLBACK`.execute(db);
        other.database.close();
      }
      const pragmas = await sql<{ v: string | number }>`
        select journal_mode as v from pragma_journal_mode
        union all select timeout from pragma_busy_timeout
        union all select foreign_keys from pragma_foreign_keys`.execute(db);
      expect(pragmas.rows.map((r) => String(r.v))).toEqual(["wal", "10000", "1"]);
    } finally {
      await db.destroy();
      await file.drop();
    }
  };
}

describe("the SQLite engine", () => {
  let file: TestDatabase;
  let betterSqlite3: boolean;
  beforeAll(async () => {
    file = await sqliteDatabase();
    betterSqlite3 = await betterSqlite3Loads();
  });
  afterAll(() => file.drop());

  it("is node:sqlite where the runtime has it, else better-sqlite3", async () => {
    const opened = await openSqlite(":memory:");
    opened.database.close();
    expect(opened.driver).toBe(runtimeHasNodeSqlite() ? "node:sqlite" : "better-sqlite3");
  });

  it.runIf(runtimeHasNodeSqlite())("works through node:sqlite", roundTrip("node:sqlite"));

  it.runIf(!runtimeHasNodeSqlite())(
    "refuses node:sqlite on a runtime without it, naming the Node.js needed",
    async () => {
      await expect(openSqlite(":memory:", { driver: "node:sqlite" })).rejects.toMatchObject({
        code: "invalid_config",
        message: expect.stringContaining("Node.js 22.16"),
      });
    },
  );

  it("works through better-sqlite3 when it is built for this Node.js", async () => {
    // On Node.js 20 it is the only engine, so it must load; on 22 CI runs the build
    // made for Node.js 20, which cannot load and must say what to do.
    if (!runtimeHasNodeSqlite()) expect(betterSqlite3).toBe(true);
    if (betterSqlite3) return roundTrip("better-sqlite3")();
    await expect(openSqlite(":memory:", { driver: "better-sqlite3" })).rejects.toMatchObject({
      code: "invalid_config",
      message: expect.stringContaining("npm rebuild better-sqlite3"),
    });
  });

  it("tells a file that cannot be opened from a missing engine", async () => {
    await expect(openSqlite(`${file.files[0]}/not-a-directory/x.db`)).rejects.not.toMatchObject({
      code: "invalid_config",
    });
  });
});
