import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openBroker, openBrokerWithStore, storeOf } from "../fixtures/broker.js";
import { describeEachDriver, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import { loginAndConsent } from "../fixtures/interaction.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  DEFAULT_REDIRECT_URI,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { startWorker } from "../fixtures/processes.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";

/**
 * Several Tokenwarden processes on one database: the lease row must make them agree
 * on one refresh, and a holder that dies must not block the others past its lease.
 */
let op: OidcFixture;
let quirk: QuirkServer;

beforeAll(async () => {
  op = await startOidcProvider({ accessTokenTtlSeconds: 2 });
  quirk = await startQuirkServer();
});
afterAll(async () => {
  await op.close();
  await quirk.close();
});

await describeEachDriver("processes on $name", ({ create }) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await create();
  });
  afterAll(async () => {
    await db.drop();
  });

  it("500 concurrent getToken calls in each of 3 processes on a stale token make one token request", async () => {
    const tw = await openBroker(db);
    try {
      await tw.putIntegration({
        key: "storm",
        grantType: "client_credentials",
        tokenUrl: op.tokenUrl,
        clientId: BASIC_CLIENT_ID,
        clientSecret: BASIC_CLIENT_SECRET,
        scopes: ["api:read"],
      });
      await tw.putConnection({ id: "storm-x", integration: "storm" });
      const workers = [0, 1, 2].map(() =>
        startWorker({
          database: db.url,
          secretKey: TEST_SECRET_KEY,
          connectionId: "storm-x",
          count: 500,
        }),
      );
      for (const w of workers) expect(await w.nextLine()).toBe("ready");

      const first = await tw.getToken("storm-x");
      // Stale once less than half its 2-second lifetime is left.
      await sleep(Math.max(0, Date.parse(first.expiresAt!) - 1000 - Date.now() + 50));
      const before = op.tokenRequests;
      for (const w of workers) w.go();
      const results = await Promise.all(
        workers.map(
          async (w) => JSON.parse(await w.nextLine()) as { tokens: string[]; errors: string[] },
        ),
      );
      await Promise.all(workers.map((w) => w.exited));

      expect(op.tokenRequests - before).toBe(1);
      for (const r of results) expect(r.errors).toEqual([]);
      const tokens = new Set(results.flatMap((r) => r.tokens));
      expect(tokens.size).toBe(1);
      expect(tokens.has(first.accessToken)).toBe(false);
      const events = await tw.listEvents("storm-x");
      expect(events.filter((e) => e.outcome === "success")).toHaveLength(2);
      // Its 2-second tokens would keep the next test's scheduler busy: out of the way.
      await tw.deleteConnection("storm-x");
    } finally {
      await tw.close();
    }
  });

  it("the scheduler, a person's refresh, a refused API call and a demand in three processes make one rotation", async () => {
    const refusedTokens = new Set<string>();
    quirk.on("/rotating-api", (req, res) => {
      const token = String(req.headers.authorization ?? "").replace(/^Bearer /, "");
      json(res, refusedTokens.has(token) ? 401 : 200, {});
    });
    const tw = await openBrokerWithStore({
      database: db.url,
      secretKey: TEST_SECRET_KEY,
      scheduler: { tickMs: 10 },
    });
    try {
      await tw.putIntegration({
        key: "rotating",
        grantType: "authorization_code",
        authorizationUrl: op.authorizationUrl,
        tokenUrl: op.tokenUrl,
        clientId: BASIC_CLIENT_ID,
        clientSecret: BASIC_CLIENT_SECRET,
        scopes: ["api:read"],
        apiBaseUrl: quirk.origin,
      });
      await tw.putConnection({ id: "rot-1", integration: "rotating" });
      // Long enough that the scheduler renews once during the test, not twice.
      op.setAccessTokenTtl(6);
      const { url } = await tw.startAuthorization("rot-1", { redirectUri: DEFAULT_REDIRECT_URI });
      await tw.completeAuthorization((await loginAndConsent(url)).searchParams);
      const common = { database: db.url, secretKey: TEST_SECRET_KEY, connectionId: "rot-1" };
      const workers = [
        startWorker({ ...common, count: 1, mode: "refresh" }),
        startWorker({
          ...common,
          count: 1,
          mode: "fetch",
          path: "/rotating-api",
          minTtlSeconds: 0,
        }),
        startWorker({ ...common, count: 1, minTtlSeconds: 3600 }),
      ];
      for (const w of workers) expect(await w.nextLine()).toBe("ready");
      op.setTokenDelay(3000); // long enough that the workers start while it runs, even on a busy machine
      const before = op.tokenRequestLog.length;
      // The scheduler starts the refresh when the window opens (half the 6 s lifetime)...
      while (!op.tokenRequestLog.slice(before).some((r) => r.status === 0)) await sleep(5);
      const replaced = (await storeOf(tw).getConnection("rot-1"))?.token?.accessToken as string;
      refusedTokens.add(replaced); // as if the API had already dropped it
      // ...and while the slowed server works on it, the others want one too.
      for (const w of workers) w.go();
      const results = await Promise.all(
        workers.map(
          async (w) => JSON.parse(await w.nextLine()) as { tokens: string[]; errors: string[] },
        ),
      );
      await Promise.all(workers.map((w) => w.exited));
      op.setTokenDelay(0);

      // (The scheduler also renews the earlier test's client credentials connection.)
      const refreshes = op.tokenRequestLog
        .slice(before)
        .filter((r) => r.grantType === "refresh_token");
      expect(refreshes.map((r) => r.status)).toEqual([200]);
      for (const r of results) expect(r.errors).toEqual([]);
      const stored = await storeOf(tw).getConnection("rot-1");
      expect(stored?.state.status).toBe("active");
      expect(new Set(results.flatMap((r) => r.tokens))).toEqual(
        new Set([stored?.token?.accessToken]),
      );
      expect((await op.introspect(stored?.token?.accessToken as string)).active).toBe(true);
      expect((await op.introspect(stored?.token?.refreshToken as string)).active).toBe(true);
    } finally {
      op.setTokenDelay(0);
      op.setAccessTokenTtl(2);
      await tw.close();
    }
  });

  it("a holder killed in the middle of a refresh delays the others by no more than the lease", async () => {
    let hang = true;
    quirk.on("/slow-token", (_req, res) => {
      if (hang) return; // the first request never gets an answer
      json(res, 200, { access_token: `fresh-${Date.now()}`, expires_in: 300 });
    });
    const timeoutMs = 1500;
    const leaseMs = timeoutMs + 2000; // LEASE_MARGIN_MS in the broker
    const tw = await openBroker(db);
    try {
      await tw.putIntegration({
        key: "slow",
        grantType: "client_credentials",
        tokenUrl: quirk.url("/slow-token"),
        clientId: "c",
        timeoutMs,
      });
      await tw.putConnection({ id: "slow-1", integration: "slow" });
      const holder = startWorker({
        database: db.url,
        secretKey: TEST_SECRET_KEY,
        connectionId: "slow-1",
        count: 1,
      });
      expect(await holder.nextLine()).toBe("ready");
      const seen = quirk.requests.length;
      holder.go();
      while (quirk.requests.length === seen) await sleep(5); // the holder is now mid-refresh
      const claimedAt = Date.now();
      holder.child.kill("SIGKILL");
      await holder.exited;
      hang = false;

      const token = await tw.getToken("slow-1");
      const waited = Date.now() - claimedAt;
      expect(token.accessToken).toMatch(/^fresh-/);
      // It did wait for the dead holder's lease, and not much longer.
      expect(waited).toBeGreaterThan(leaseMs - 1000);
      expect(waited).toBeLessThan(leaseMs + 1500);
      expect(quirk.requests.length - seen).toBe(2);
    } finally {
      await tw.close();
    }
  });
});
