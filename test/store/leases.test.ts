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

  it("claims a batch's leases under one name, each only if free, lapsed or already its own", async () => {
    const { parseIntegration, parseConnection } = await import("../../src/core/index.js");
    await store.putIntegration(
      parseIntegration({
        key: "b",
        grantType: "client_credentials",
        tokenUrl: "https://a.example/t",
        clientId: "c",
      }),
      0,
    );
    for (const id of ["b1", "b2", "b3"])
      await store.putConnection(parseConnection({ id, integration: "b" }), 0, {
        status: "active",
        expiresAt: null,
        nextRefreshAt: null,
        lastRefreshAt: null,
        failureCount: 0,
        lastError: null,
        scope: null,
        tokenVersion: 0,
      });
    expect(await store.tryClaimLease("b2", "other", 1000, 0)).toBe(true);
    const claimed = await store.tryClaimLeases(["b3", "b1", "b2", "gone"], "batch", 1000, 500);
    expect(claimed.map((c) => c.id).sort()).toEqual(["b1", "b3", "gone"]);
    expect(claimed.find((c) => c.id === "b1")?.current).toEqual({
      tokenVersion: 0,
      status: "active",
    });
    expect(claimed.find((c) => c.id === "gone")?.current).toBeUndefined(); // no such connection
    // Held: another claim waits; extended: still held past the first deadline.
    expect(await store.tryClaimLease("b1", "other", 2000, 900)).toBe(false);
    await store.extendLeases("batch", 3000);
    expect(await store.tryClaimLease("b1", "other", 4000, 2500)).toBe(false);
    expect(await store.tryClaimLease("b1", "other", 4000, 3000)).toBe(true); // lapsed
    // The other holder's lapsed lease is taken over.
    expect((await store.tryClaimLeases(["b2"], "batch-2", 5000, 1000)).map((c) => c.id)).toEqual([
      "b2",
    ]);
    for (const id of ["b1", "b2", "b3", "gone"]) {
      await store.releaseLease(id, "batch");
      await store.releaseLease(id, "batch-2");
      await store.releaseLease(id, "other");
    }
  });

  it("writes renewals in a batch, each only under its own condition, with its event and lease", async () => {
    const { parseConnection } = await import("../../src/core/index.js");
    const { afterToken } = await import("../../src/core/state.js");
    const integration = (await store.getIntegration("b"))?.integration;
    if (integration === undefined) throw new Error("integration b is missing");
    const token = (access: string) => ({
      accessToken: access,
      tokenType: "Bearer",
      issuedAt: 1000,
      expiresAt: 3_601_000,
      raw: {},
    });
    const write = (id: string, expectedVersion: number, holder: string) => ({
      id,
      patch: afterToken(
        integration,
        parseConnection({ id, integration: "b" }),
        token(`t-${id}`),
        1000,
        () => 0,
      ),
      expectedVersion,
      expectedStatus: "active" as const,
      leaseHolder: holder,
      topic: `test|connection:${id}`,
      event: {
        connectionId: id,
        integration: "b",
        at: 1000,
        trigger: "schedule" as const,
        action: "obtain" as const,
        outcome: "success" as const,
        httpStatus: 200,
        errorCode: null,
        errorDescription: null,
        durationMs: 12.4,
      },
    });
    await store.tryClaimLeases(["b1", "b2", "b3"], "w", 10_000, 0);
    await store.updateState("b2", { status: "error" }, 900); // a status changed meanwhile
    const before = await store.lastEventId();
    const answers = await store.writeRenewals(
      [write("b1", 0, "w"), write("b2", 0, "w"), write("b3", 7, "w"), write("missing", 0, "w")],
      1000,
    );
    expect(answers.map((a) => a?.tokenVersion)).toEqual([1, undefined, undefined, undefined]);
    expect(answers[0]?.event).toMatchObject({
      connectionId: "b1",
      outcome: "success",
      durationMs: 12,
    });
    const b1 = await store.getConnection("b1");
    expect(b1?.token?.accessToken).toBe("t-b1");
    expect(b1?.state).toMatchObject({ status: "active", tokenVersion: 1, expiresAt: 3_601_000 });
    expect((await store.getConnection("b2"))?.state).toMatchObject({
      status: "error",
      tokenVersion: 0,
    });
    expect((await store.getConnection("b3"))?.token).toBeUndefined();
    // One event, for the write that landed; its lease released, the others' kept.
    const events = await store.listEventsAfter(before, 10);
    expect(events.map((e) => [e.id, e.connectionId])).toEqual([[answers[0]?.event.id, "b1"]]);
    expect(await store.tryClaimLease("b1", "next", 20_000, 1000)).toBe(true);
    expect(await store.tryClaimLease("b3", "next", 20_000, 1000)).toBe(false);
  });

  it("migrates once when opened again, and reports ready", async () => {
    const again = await openStore({ database: db.url, secretKey: TEST_SECRET_KEY });
    expect(await again.ping()).toBe(true);
    await again.close();
  });
});
