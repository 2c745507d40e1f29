import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyRing } from "../../src/broker/api-keys.js";
import { EventLog } from "../../src/broker/event-log.js";
import { ProtocolSupport } from "../../src/broker/protocol-support.js";
import { loadConnection, Renewer } from "../../src/broker/renewer.js";
import {
  HttpClient,
  ManualClock,
  openStore,
  type Store,
  type TokenEvent,
  type Tokenwarden,
} from "../../src/index.js";
import { buildServer } from "../../src/service/server.js";
import { openBroker } from "../fixtures/broker.js";
import { sqliteDatabase, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { caught } from "../helpers.js";

/**
 * Regressions of the token path, one per item the correctness issue found: a caller
 * joining a flight gets what it asked for, revoke records what the server said, a bug
 * is a bug, the refresh window holds without the scheduler, and a late or losing
 * holder never undoes the winner.
 */
let quirk: QuirkServer;
let db: TestDatabase;
let issued = 0;
const open: Tokenwarden[] = [];
/** For the renewers the race tests build by hand. */
const http = new HttpClient();

beforeAll(async () => {
  quirk = await startQuirkServer();
  quirk.on("/token", (_req, res) => {
    issued++;
    json(res, 200, { access_token: `access-${issued}-0123456789`, expires_in: 300 });
  });
  quirk.on("/revoke", (_req, res) => {
    res.statusCode = 204;
    res.end();
  });
  quirk.on("/api/orders", (_req, res) => json(res, 200, { orders: [] }));
  db = await sqliteDatabase();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((tw) => tw.close()));
});
afterAll(async () => {
  await http.close();
  await quirk.close();
  await db.drop();
});

async function instance(options: Parameters<typeof Tokenwarden.open>[0] = {}) {
  const tw = await openBroker(db, options);
  open.push(tw);
  return tw;
}

async function connection(tw: Tokenwarden, id: string, overrides: Record<string, unknown> = {}) {
  await tw.putIntegration({
    key: id,
    grantType: "client_credentials",
    tokenUrl: quirk.url("/token"),
    revocationUrl: quirk.url("/revoke"),
    clientId: "app",
    clientSecret: "app-secret-value",
    apiBaseUrl: quirk.url("/api"),
    ...overrides,
  });
  await tw.putConnection({ id, integration: id });
}

function leftSeconds(expiresAt: string | null, now: number): number {
  return (Date.parse(expiresAt as string) - now) / 1000;
}

describe("the token path", () => {
  it("a caller asking for more life than a joined flight's answer gets a token with that life", async () => {
    const clock = new ManualClock(Date.now());
    const writer = await instance({ clock });
    await connection(writer, "minttl");
    const first = await writer.getToken("minttl");
    clock.advance(285_000); // 15 s left of 300
    const fresh = await instance({ clock }); // an empty cache: both callers go to the store
    const [short, long] = await Promise.all([
      fresh.getToken("minttl", { minTtlSeconds: 10 }),
      fresh.getToken("minttl", { minTtlSeconds: 600 }),
    ]);
    expect(short.accessToken).toBe(first.accessToken);
    // 600 s is more than the lifetime allows: capped at half of it, 150 s.
    expect(leftSeconds(long.expiresAt, clock.now())).toBeGreaterThanOrEqual(150);
    expect(long.accessToken).not.toBe(first.accessToken);
  });

  it("fetch never reads the cache behind getToken's back: calls survive concurrent config writes", async () => {
    const tw = await instance();
    await connection(tw, "busy");
    const calls = Array.from({ length: 40 }, async (_, i) => {
      if (i % 2 === 0) await tw.putConnection({ id: "busy", integration: "busy" });
      return (await tw.fetch("busy", "/orders")).status;
    });
    expect(await Promise.all(calls)).toEqual(Array(40).fill(200));
  });

  it("revoke records the status the server answered", async () => {
    const tw = await instance();
    await connection(tw, "revoked");
    await tw.getToken("revoked");
    const events: TokenEvent[] = [];
    tw.on("event", (e) => events.push(e));
    expect((await tw.revoke("revoked")).status).toBe("revoked");
    expect(events.map((e) => [e.action, e.outcome, e.httpStatus])).toEqual([
      ["revoke", "success", 204],
    ]);
  });

  it("a bug is internal_error, with no detail in the error or the event, and a 500 through the service", async () => {
    const store = await openStore({ database: db.url, secretKey: TEST_SECRET_KEY });
    // A status write runs in a transaction (with its webhook events): its store is buggy too.
    const bugged = (inner: Store): Store =>
      new Proxy(inner, {
        get(target, property) {
          if (property === "updateState") {
            return async () => {
              throw new TypeError("cannot read properties of undefined (secret detail)");
            };
          }
          if (property === "transaction")
            return <T>(fn: (trx: Store) => Promise<T>) =>
              target.transaction((trx) => fn(bugged(trx)));
          const value = Reflect.get(target, property);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    const buggy = bugged(store);
    const tw = await instance({ store: buggy });
    await connection(await instance(), "buggy");
    const events: TokenEvent[] = [];
    tw.on("event", (e) => events.push(e));
    const error = await caught(() => tw.getToken("buggy"));
    expect(error.code).toBe("internal_error");
    expect(error.message).not.toContain("secret detail");
    expect(events.map((e) => [e.outcome, e.errorCode])).toEqual([["failure", "internal_error"]]);
    expect(JSON.stringify(events)).not.toContain("secret detail");

    const app = await buildServer({
      tw,
      keys: new ApiKeyRing(buggy, ["bug-key-0123456789"]),
      publicUrl: "http://127.0.0.1",
    });
    const res = await app.inject({
      url: "/v1/connections/buggy/token",
      headers: { authorization: "Bearer bug-key-0123456789" },
    });
    expect(res.statusCode).toBe(500);
    expect(res.json().error.code).toBe("internal_error");
    expect(res.body).not.toContain("secret detail");
    await app.close();
    await store.close();
  });

  it("a token used inside its refresh window is renewed then, without the scheduler", async () => {
    const clock = new ManualClock(Date.now());
    const tw = await instance({ clock });
    await connection(tw, "ahead", { refreshAheadSeconds: 120 });
    const first = await tw.getToken("ahead");
    clock.advance(200_000); // 100 s left: inside the 120 s window, still good for 10 s
    const renewed = new Promise<TokenEvent>((resolve) =>
      tw.on("event", (e) => e.outcome === "success" && resolve(e)),
    );
    // The caller is not kept waiting: it gets the current token at once...
    expect((await tw.getToken("ahead")).accessToken).toBe(first.accessToken);
    // ...and the renewal happens behind it.
    expect((await renewed).trigger).toBe("demand");
    let next = await tw.getToken("ahead");
    for (let tries = 0; tries < 100 && next.accessToken === first.accessToken; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 10)); // the flight hands its token on
      next = await tw.getToken("ahead");
    }
    expect(next.accessToken).not.toBe(first.accessToken);
    expect(leftSeconds(next.expiresAt, clock.now())).toBeGreaterThan(250);
  });
});

describe("a holder that lost the race", () => {
  /** A rotating server: each refresh token works once, and answers invalid_grant after. */
  const used = new Set<string>();
  let serial = 0;
  beforeAll(() => {
    quirk.on("/rotating-token", (req, res) => {
      const presented = req.form.get("refresh_token") ?? "";
      if (used.has(presented)) return json(res, 400, { error: "invalid_grant" });
      used.add(presented);
      serial++;
      json(res, 200, {
        access_token: `rot-access-${serial}-0123456789`,
        refresh_token: `rot-refresh-${serial}`,
        expires_in: 300,
      });
    });
  });

  async function setUp(id: string) {
    const store = await openStore({ database: db.url, secretKey: TEST_SECRET_KEY });
    const tw = await instance({ store });
    await tw.putIntegration({
      key: id,
      grantType: "refresh_token",
      tokenUrl: quirk.url("/rotating-token"),
      clientId: "app",
      clientSecret: "secret",
    });
    await tw.putConnection({ id, integration: id, refreshToken: `${id}-start` });
    await tw.getToken(id); // consumes <id>-start, stores rot-refresh-N
    const clock = new ManualClock(Date.now());
    const renewer = new Renewer({
      store,
      clock,
      random: () => 0.5,
      events: new EventLog(store, clock, () => undefined),
      http,
      protocol: new ProtocolSupport({ store, clock, http, holderId: "token-path-test" }),
      publish: async () => undefined,
      keepUnwritten: () => undefined,
    });
    return { store, tw, renewer };
  }

  it("treats invalid_grant for a refresh token that is no longer stored as a lost race, not needs_reauth", async () => {
    const { store, renewer } = await setUp("race-lost");
    const stale = await loadConnection(store, "race-lost");
    // Another holder renews first and rotates the refresh token.
    await renewer.attempt(await loadConnection(store, "race-lost"), "schedule");
    const winner = await store.getConnection("race-lost");
    // The late holder presents the refresh token the winner consumed.
    const after = await renewer.attempt(stale, "demand");
    expect(after.stored.token?.accessToken).toBe(winner?.token?.accessToken);
    const now = await store.getConnection("race-lost");
    expect(now?.state.status).toBe("active");
    expect(now?.token?.refreshToken).toBe(winner?.token?.refreshToken);
    await store.close();
  });

  it("a late holder never overwrites a newer token, and never drops a rotated refresh token", async () => {
    const { store, renewer } = await setUp("race-late");
    const stale = await loadConnection(store, "race-late");
    // A newer write that did not renew the refresh token (the same one is still stored).
    const newer = await store.updateState(
      "race-late",
      { token: { ...(stale.stored.token as NonNullable<typeof stale.stored.token>) } },
      Date.now(),
    );
    expect(newer).toBe(stale.stored.state.tokenVersion + 1);
    // The late holder's refresh succeeds at the server, which rotates the refresh token:
    // the stored one is dead now, so the late holder's token must be written.
    const after = await renewer.attempt(stale, "schedule");
    const stored = await store.getConnection("race-late");
    expect(stored?.token?.refreshToken).not.toBe(stale.stored.token?.refreshToken);
    expect(stored?.token?.accessToken).toBe(after.stored.token?.accessToken);
    expect(stored?.state.tokenVersion).toBe((newer as number) + 1);

    // A holder later still, from the first snapshot: its refresh token is dead (invalid_grant),
    // and the newer token stands.
    const again = await renewer.attempt(stale, "schedule");
    expect(again.stored.token?.accessToken).toBe(stored?.token?.accessToken);
    expect((await store.getConnection("race-late"))?.state.status).toBe("active");
    await store.close();
  });
});
