import { afterAll, beforeAll, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { openSqlite } from "../../src/store/sqlite-driver.js";
import { describeEachDriver, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";

await describeEachDriver("leases and the schedule index on $name", ({ create }) => {
  let db: TestDatabase;
  let store: Store;
  beforeAll(async () => {
    db = await create();
    store = await openStore({ database: db.url, secretKey: TEST_SECRET_KEY });
  });
  afterAll(async () => {
    await store.close();
    await db.drop();
  });

  it("gives a lease to one holder until it lapses or is released", async () => {
    expect(await store.tryClaimLease("c1", "a", 1000, 0)).toBe(true);
    expect(await store.tryClaimLease("c1", "b", 1500, 500)).toBe(false);
    expect(await store.tryClaimLease("c1", "a", 1600, 600)).toBe(true); // the holder extends it
    expect(await store.tryClaimLease("c1", "b", 2600, 1600)).toBe(true); // lapsed: taken over
    await store.releaseLease("c1", "a"); // not a's any more: no effect
    expect(await store.tryClaimLease("c1", "c", 2700, 1700)).toBe(false);
    await store.releaseLease("c1", "b");
    expect(await store.tryClaimLease("c1", "c", 2700, 1700)).toBe(true);
  });

  it("finds due connections through the next-refresh index, not a table scan", async () => {
    if (store.dialect !== "sqlite") return; // PostgreSQL's planner prefers a scan on tiny tables
    const { database: raw } = await openSqlite(db.url.slice("sqlite:".length));
    const plan = raw
      .prepare(
        "EXPLAIN QUERY PLAN select id, next_refresh_at from tw_connections where next_refresh_at <= ? order by next_refresh_at limit ?",
      )
      .all([0, 10]) as Array<{ detail: string }>;
    raw.close();
    expect(plan.map((p) => p.detail).join(" ")).toContain(
      "USING INDEX tw_connections_next_refresh",
    );
  });

  it("checks out due connections once: concurrent schedulers take disjoint rows", async () => {
    const { parseIntegration, parseConnection } = await import("../../src/core/index.js");
    await store.putIntegration(
      parseIntegration({
        key: "i",
        grantType: "client_credentials",
        tokenUrl: "https://a.example/t",
        clientId: "c",
      }),
      0,
    );
    const state = {
      status: "active" as const,
      expiresAt: null,
      lastRefreshAt: null,
      failureCount: 0,
      lastError: null,
      scope: null,
      tokenVersion: 0,
    };
    for (let i = 0; i < 30; i++) {
      await store.putConnection(parseConnection({ id: `due-${i}`, integration: "i" }), 0, {
        ...state,
        nextRefreshAt: 100 + i,
      });
    }
    await store.putConnection(parseConnection({ id: "later", integration: "i" }), 0, {
      ...state,
      nextRefreshAt: 10_000,
    });
    const other = await openStore({ database: db.url, secretKey: TEST_SECRET_KEY });
    const [a, b] = await Promise.all([
      store.claimDueConnections(1000, 20, 5000),
      other.claimDueConnections(1000, 20, 5000),
    ]);
    // SQLite may hand the second caller nothing this round (it saw the same rows and
    // lost the race); the rest comes out on the next call. No row is given twice.
    const rest = await other.claimDueConnections(1000, 50, 5000);
    await other.close();
    const ids = [...a, ...b, ...rest].map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `due-${i}`).sort());
    expect(a.map((r) => r.nextRefreshAt)).toEqual(
      [...a.map((r) => r.nextRefreshAt)].sort((x, y) => x - y),
    );
    expect(await store.claimDueConnections(1000, 50, 5000)).toEqual([]); // checked out until 5000
    expect((await store.claimDueConnections(5000, 50, 9000)).length).toBe(30);
  });

  it("migrates once when opened again, and reports ready", async () => {
    const again = await openStore({ database: db.url, secretKey: TEST_SECRET_KEY });
    expect(await again.ping()).toBe(true);
    await again.close();
  });
});
