import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ManualClock, type Tokenwarden } from "../../src/index.js";
import { openBroker } from "../fixtures/broker.js";
import { sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";

/**
 * Two Tokenwarden instances in one process own their connections: closing one ends
 * its own and leaves the other's token requests and API calls working, including a
 * call the other has in flight at that moment. The server tells connections apart by
 * the client's port.
 */
let server: QuirkServer;
let db: TestDatabase;
let issued = 0;
let releaseSlow: () => void = () => {};
const slowGate = new Promise<void>((resolve) => {
  releaseSlow = resolve;
});

beforeAll(async () => {
  // Longer than the test: a connection dropped for idling would look like a closed pool.
  server = await startQuirkServer({ keepAliveTimeoutMs: 120_000 });
  server.on("/token", (_req, res) =>
    json(res, 200, { access_token: `at-${++issued}-0123456789`, expires_in: 300 }),
  );
  server.on("/api/echo", (req, res) =>
    json(res, 200, { authorization: req.headers.authorization ?? null }),
  );
  server.on("/api/slow", async (_req, res) => {
    await slowGate;
    json(res, 200, { slow: true });
  });
  db = await sqliteDatabase();
});
afterAll(async () => {
  releaseSlow();
  await server.close();
  await db.drop();
});

async function instance(clock: ManualClock, connectionId: string): Promise<Tokenwarden> {
  const tw = await openBroker(db, { clock, http: { keepAliveTimeoutMs: 120_000 } });
  await tw.putIntegration({
    key: "shared",
    grantType: "client_credentials",
    tokenUrl: server.url("/token"),
    apiBaseUrl: server.url("/api"),
    clientId: "app",
    clientSecret: "secret",
  });
  await tw.putConnection({ id: connectionId, integration: "shared" });
  return tw;
}

/** Runs `work` and returns the client ports of the requests it made. */
async function portsOf(work: () => Promise<unknown>): Promise<Set<number>> {
  const before = server.requests.length;
  await work();
  return new Set(server.requests.slice(before).flatMap((r) => r.remotePort ?? []));
}

async function echo(tw: Tokenwarden, id: string): Promise<unknown> {
  const res = await tw.fetch(id, "/echo");
  expect(res.status).toBe(200);
  return res.json();
}

describe("two Tokenwarden instances in one process", () => {
  it("close independently: closing one leaves the other's token requests and API calls working", async () => {
    const clockA = new ManualClock(Date.now());
    const clockB = new ManualClock(Date.now());
    const a = await instance(clockA, "a-1");
    const b = await instance(clockB, "b-1");
    try {
      const portsA = await portsOf(async () => {
        await a.getToken("a-1");
        for (let i = 0; i < 3; i++) await echo(a, "a-1");
      });
      const tokenB = (await b.getToken("b-1")).accessToken;
      const portsB = await portsOf(async () => {
        for (let i = 0; i < 3; i++)
          expect(await echo(b, "b-1")).toEqual({ authorization: `Bearer ${tokenB}` });
      });
      expect([...portsA].some((port) => portsB.has(port))).toBe(false);

      // B has a call in flight while A closes: A's close neither waits for it nor ends it.
      const slow = b.fetch("b-1", "/slow");
      await vi.waitFor(() =>
        expect(server.requests.some((r) => r.url.pathname === "/api/slow")).toBe(true),
      );
      const slowPort = server.requests.find((r) => r.url.pathname === "/api/slow")?.remotePort;
      if (slowPort !== undefined) portsB.add(slowPort);
      await a.close();
      releaseSlow();
      const slowRes = await slow;
      expect(slowRes.status).toBe(200);
      expect(await slowRes.json()).toEqual({ slow: true });

      // A's connections are gone; B's are open and still the ones it uses.
      await vi.waitFor(() => {
        const open = server.openPorts();
        expect(open.filter((port) => portsA.has(port))).toEqual([]);
      });
      const open = new Set(server.openPorts());
      expect([...portsB].every((port) => open.has(port))).toBe(true);
      const after = await portsOf(() => echo(b, "b-1"));
      expect([...after].every((port) => portsB.has(port))).toBe(true);

      // B's token expires: it renews at the token endpoint and calls the API with the new one.
      clockB.advance(3600_000);
      const renewed = await portsOf(async () => {
        const next = (await b.getToken("b-1")).accessToken;
        expect(next).not.toBe(tokenB);
        expect(await echo(b, "b-1")).toEqual({ authorization: `Bearer ${next}` });
      });
      expect(server.requests.at(-2)?.url.pathname).toBe("/token");
      expect([...renewed].every((port) => portsB.has(port))).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
