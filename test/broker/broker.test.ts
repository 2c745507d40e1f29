import { readFile } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { ManualClock, type TokenEvent, type Tokenwarden } from "../../src/index.js";
import { openBrokerWithStore, storeOf } from "../fixtures/broker.js";
import { describeEachDriver, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import { loginAndConsent } from "../fixtures/interaction.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  DEFAULT_REDIRECT_URI,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { type PasswordServerFixture, startPasswordServer } from "../fixtures/password-server.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { caught } from "../helpers.js";

let op: OidcFixture;
let pw: PasswordServerFixture;
let quirk: QuirkServer;

beforeAll(async () => {
  op = await startOidcProvider({ accessTokenTtlSeconds: 300 });
  pw = await startPasswordServer({
    clients: [
      {
        clientId: "pw-app",
        clientSecret: "pw-secret-value",
        grants: ["password", "refresh_token"],
      },
    ],
    users: [{ username: "ann", password: "ann-password-value" }],
    accessTokenLifetimeSeconds: 120,
  });
  quirk = await startQuirkServer();
});
afterAll(async () => {
  await op.close();
  await pw.close();
  await quirk.close();
});

function oidcIntegration(overrides: Record<string, unknown> = {}) {
  return {
    key: "op",
    grantType: "client_credentials",
    authorizationUrl: op.authorizationUrl,
    tokenUrl: op.tokenUrl,
    revocationUrl: op.revocationUrl,
    clientId: BASIC_CLIENT_ID,
    clientSecret: BASIC_CLIENT_SECRET,
    scopes: ["api:read"],
    ...overrides,
  };
}

/** oauth2-server does not form-decode Basic credentials: body authentication suits it. */
function passwordIntegration(key: string) {
  return {
    key,
    grantType: "password",
    tokenUrl: pw.tokenUrl,
    clientId: "pw-app",
    clientSecret: "pw-secret-value",
    clientAuth: "body",
  };
}

/** Authorizes a connection through the broker and oidc-provider's own pages. */
async function authorize(tw: Tokenwarden, id: string) {
  const { url } = await tw.startAuthorization(id, { redirectUri: DEFAULT_REDIRECT_URI });
  const callback = await loginAndConsent(url);
  return tw.completeAuthorization(callback.searchParams);
}

function waitForEvent(
  tw: Tokenwarden,
  match: (e: TokenEvent) => boolean,
  timeoutMs = 15_000,
): Promise<TokenEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no matching event")), timeoutMs);
    const listener = (e: TokenEvent) => {
      if (!match(e)) return;
      clearTimeout(timer);
      tw.off("event", listener);
      resolve(e);
    };
    tw.on("event", listener);
  });
}

await describeEachDriver("broker on $name", ({ create }) => {
  let db: TestDatabase;
  const open: Tokenwarden[] = [];
  async function openTw(options: Parameters<typeof Tokenwarden.open>[0] = {}) {
    const tw = await openBrokerWithStore({
      database: db.url,
      secretKey: TEST_SECRET_KEY,
      scheduler: false,
      ...options,
    });
    open.push(tw);
    return tw;
  }

  beforeAll(async () => {
    db = await create();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((tw) => tw.close()));
  });
  afterAll(async () => {
    await db.drop();
  });

  it("obtains a client credentials token once, then serves it from the cache", async () => {
    const tw = await openTw();
    const events: TokenEvent[] = [];
    tw.on("event", (e) => events.push(e));
    await tw.putIntegration(oidcIntegration({ key: "cc" }));
    const view = await tw.putConnection({ id: "cc-prod", integration: "cc", environment: "prod" });
    expect(view).toMatchObject({
      status: "active",
      clientSecret: { set: false },
      environment: "prod",
    });

    const before = op.tokenRequests;
    const token = await tw.getToken("cc-prod");
    expect(token.header).toEqual({ name: "Authorization", value: `Bearer ${token.accessToken}` });
    expect(token.scope).toBe("api:read");
    for (let i = 0; i < 10; i++)
      expect((await tw.getToken("cc-prod")).accessToken).toBe(token.accessToken);
    expect(op.tokenRequests - before).toBe(1);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      connectionId: "cc-prod",
      integration: "cc",
      trigger: "demand",
      action: "obtain",
      outcome: "success",
      httpStatus: 200,
      errorCode: null,
    });
    const stored = await tw.listEvents("cc-prod");
    expect(stored.map((e) => e.id)).toEqual([events[0]!.id]);
    expect((await tw.getIntegration("cc")).clientSecret).toEqual({ set: true });
  });

  it("500 concurrent getToken calls on a stale token make exactly one token request", async () => {
    const clock = new ManualClock(Date.now());
    const tw = await openTw({ clock });
    await tw.putIntegration(oidcIntegration({ key: "storm" }));
    await tw.putConnection({ id: "storm-1", integration: "storm" });
    const first = await tw.getToken("storm-1");
    clock.advance(3600_000); // by our clock the token is now expired
    const before = op.tokenRequests;
    const results = await Promise.all(Array.from({ length: 500 }, () => tw.getToken("storm-1")));
    expect(op.tokenRequests - before).toBe(1);
    const distinct = new Set(results.map((r) => r.accessToken));
    expect(distinct.size).toBe(1);
    expect(distinct.has(first.accessToken)).toBe(false);
  });

  it("authorizes through the server's pages, then rotates the refresh token 20 times", async () => {
    const tw = await openTw();
    await tw.putIntegration(
      oidcIntegration({
        key: "ac",
        grantType: "authorization_code",
        scopes: ["openid", "api:read"],
      }),
    );
    const pending = await tw.putConnection({ id: "ac-1", integration: "ac" });
    expect(pending.status).toBe("pending_authorization");
    expect(await caught(() => tw.getToken("ac-1"))).toMatchObject({
      code: "pending_authorization",
    });

    const active = await authorize(tw, "ac-1");
    expect(active).toMatchObject({ status: "active", scope: "openid api:read" });
    const seen = new Set<string>();
    let previous = (await storeOf(tw).getConnection("ac-1"))!.token!;
    for (let i = 0; i < 20; i++) {
      await tw.refresh("ac-1");
      const current = (await storeOf(tw).getConnection("ac-1"))!.token!;
      expect(current.refreshToken).toBeTruthy();
      expect(current.refreshToken).not.toBe(previous.refreshToken);
      expect(current.accessToken).not.toBe(previous.accessToken);
      seen.add(current.refreshToken!);
      previous = current;
    }
    expect(seen.size).toBe(20);
    const events = await tw.listEvents("ac-1", { limit: 100 });
    expect(events.filter((e) => e.action === "refresh" && e.outcome === "success")).toHaveLength(
      20,
    );
    expect(events.at(-1)).toMatchObject({
      trigger: "authorize",
      action: "authorize",
      outcome: "success",
    });
  });

  it("a revoked refresh token leads to needs_reauth and one event, not a retry storm", async () => {
    const clock = new ManualClock(Date.now());
    const tw = await openTw({ clock });
    await tw.putIntegration(
      oidcIntegration({ key: "rv", grantType: "authorization_code", scopes: ["openid"] }),
    );
    await tw.putConnection({ id: "rv-1", integration: "rv" });
    await authorize(tw, "rv-1");
    const stored = (await storeOf(tw).getConnection("rv-1"))!.token!;
    // Someone revokes the grant at the server, behind Tokenwarden's back.
    const { revokeToken } = await import("../../src/oauth/index.js");
    const { resolveIntegration } = await import("../../src/core/index.js");
    const integration = (await storeOf(tw).getIntegration("rv"))!.integration;
    const connection = (await storeOf(tw).getConnection("rv-1"))!.connection;
    await revokeToken(
      resolveIntegration(integration, connection),
      stored.refreshToken!,
      "refresh_token",
    );

    clock.advance(3600_000);
    const before = op.tokenRequests;
    const failures = await Promise.all(
      Array.from({ length: 50 }, () => caught(() => tw.getToken("rv-1"))),
    );
    // Callers that joined the one request get its failure; a caller whose read of the
    // connection came after that failure was recorded (the database is slower than
    // the token endpoint under load) gets the state it left. Neither asks again.
    const codes = new Set(failures.map((e) => e.code));
    expect(codes.has("token_endpoint_error")).toBe(true);
    expect([...codes].every((c) => c === "token_endpoint_error" || c === "needs_reauth")).toBe(
      true,
    );
    for (let i = 0; i < 5; i++)
      expect(await caught(() => tw.getToken("rv-1"))).toMatchObject({ code: "needs_reauth" });
    expect(op.tokenRequests - before).toBe(1);
    const view = await tw.getConnection("rv-1");
    expect(view.status).toBe("needs_reauth");
    expect(view.lastError).toMatchObject({
      code: "token_endpoint_error",
      oauthError: "invalid_grant",
    });
    expect(view.nextRefreshAt).toBeNull();
    const events = (await tw.listEvents("rv-1")).filter((e) => e.outcome === "failure");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      action: "refresh",
      errorCode: "token_endpoint_error",
      httpStatus: 400,
    });
  });

  it("the scheduler refreshes a token before it expires, with no caller waiting", async () => {
    op.setAccessTokenTtl(4);
    try {
      const tw = await openTw({ scheduler: { tickMs: 50 } });
      await tw.putIntegration(oidcIntegration({ key: "sched" }));
      const obtained = waitForEvent(
        tw,
        (e) => e.connectionId === "sched-1" && e.outcome === "success",
      );
      await tw.putConnection({ id: "sched-1", integration: "sched" });
      const first = await obtained;
      expect(first.trigger).toBe("schedule");
      const firstToken = (await storeOf(tw).getConnection("sched-1"))!.token!;
      const refreshed = await waitForEvent(
        tw,
        (e) => e.connectionId === "sched-1" && e.outcome === "success",
      );
      expect(refreshed.trigger).toBe("schedule");
      // Refreshed inside the window: after half the lifetime, before the old token expired.
      expect(Date.parse(refreshed.at)).toBeGreaterThanOrEqual(firstToken.expiresAt! - 2000);
      expect(Date.parse(refreshed.at)).toBeLessThan(firstToken.expiresAt!);
      const secondToken = (await storeOf(tw).getConnection("sched-1"))!.token!;
      expect(secondToken.accessToken).not.toBe(firstToken.accessToken);
    } finally {
      op.setAccessTokenTtl(300);
    }
  });

  it("the password grant is granted again when its refresh token is gone", async () => {
    const clock = new ManualClock(Date.now());
    const tw = await openTw({ clock });
    await tw.putIntegration(passwordIntegration("pw"));
    await tw.putConnection({
      id: "pw-1",
      integration: "pw",
      username: "ann",
      password: "ann-password-value",
    });
    const first = await tw.getToken("pw-1");
    const stored = (await storeOf(tw).getConnection("pw-1"))!.token!;
    pw.revokeRefreshToken(stored.refreshToken!);
    clock.advance(3600_000);
    const second = await tw.getToken("pw-1");
    expect(second.accessToken).not.toBe(first.accessToken);
    const events = await tw.listEvents("pw-1");
    expect(events.map((e) => `${e.action}:${e.outcome}`)).toEqual([
      "obtain:success",
      "refresh:failure",
      "obtain:success",
    ]);
    expect((await tw.getConnection("pw-1")).status).toBe("active");
  });

  it("transient failures back off and keep serving the old token while it is valid", async () => {
    const clock = new ManualClock(Date.now());
    let fail = false;
    quirk.on("/flaky-token", (_req, res) =>
      fail
        ? json(res, 503, { error: "temporarily_unavailable" })
        : json(res, 200, { access_token: `T${Date.now()}`, expires_in: 100 }),
    );
    const tw = await openTw({ clock, random: () => 0 });
    await tw.putIntegration({
      key: "flaky",
      grantType: "client_credentials",
      tokenUrl: quirk.url("/flaky-token"),
      clientId: "c",
    });
    await tw.putConnection({ id: "flaky-1", integration: "flaky" });
    const token = await tw.getToken("flaky-1");
    fail = true;
    clock.advance(60_000); // in the refresh window (50 s before expiry), still valid
    const refreshFailure = await caught(() => tw.refresh("flaky-1"));
    expect(refreshFailure).toMatchObject({ code: "token_endpoint_error", status: 503 });
    expect((await tw.getToken("flaky-1")).accessToken).toBe(token.accessToken);
    const view = await tw.getConnection("flaky-1");
    expect(view.status).toBe("error");
    expect(Date.parse(view.nextRefreshAt!)).toBe(clock.now() + 1000);

    clock.advance(45_000); // expired now, and the backoff has passed
    const requests = quirk.requests.length;
    expect(await caught(() => tw.getToken("flaky-1"))).toMatchObject({ status: 503 });
    // Within the backoff, callers fail fast without touching the server.
    expect(await caught(() => tw.getToken("flaky-1"))).toMatchObject({
      code: "token_endpoint_error",
    });
    expect(quirk.requests.length - requests).toBe(1);
    fail = false;
    clock.advance(10_000);
    expect((await tw.getToken("flaky-1")).accessToken).not.toBe(token.accessToken);
    expect((await tw.getConnection("flaky-1")).status).toBe("active");
  });

  it("revokes at the server and forgets the tokens", async () => {
    const tw = await openTw();
    await tw.putIntegration(
      oidcIntegration({ key: "rk", grantType: "authorization_code", scopes: ["openid"] }),
    );
    await tw.putConnection({ id: "rk-1", integration: "rk" });
    await authorize(tw, "rk-1");
    const token = (await storeOf(tw).getConnection("rk-1"))!.token!;
    const view = await tw.revoke("rk-1");
    expect(view).toMatchObject({ status: "revoked", expiresAt: null });
    expect((await storeOf(tw).getConnection("rk-1"))!.token).toBeUndefined();
    expect(await caught(() => tw.getToken("rk-1"))).toMatchObject({ code: "needs_reauth" });
    // The server agrees: the refresh token is dead.
    const { refreshAccessToken } = await import("../../src/oauth/index.js");
    const { resolveIntegration } = await import("../../src/core/index.js");
    const config = resolveIntegration((await storeOf(tw).getIntegration("rk"))!.integration, {
      id: "rk-1",
      integration: "rk",
      environment: "",
      parameters: {},
    });
    expect(await caught(() => refreshAccessToken(config, token.refreshToken!))).toMatchObject({
      oauthError: "invalid_grant",
    });
    const events = await tw.listEvents("rk-1");
    expect(events[0]).toMatchObject({ action: "revoke", outcome: "success", trigger: "manual" });
  });

  it("refuses bad input with the field named, and changes nothing", async () => {
    const tw = await openTw();
    await tw.putIntegration(oidcIntegration({ key: "keep" }));
    const e = await caught(() =>
      tw.putIntegration(oidcIntegration({ key: "keep", tokenUrl: "not a url" })),
    );
    expect(e).toMatchObject({ code: "invalid_config", field: "tokenUrl" });
    expect((await tw.getIntegration("keep")).tokenUrl).toBe(op.tokenUrl);
    expect(await caught(() => tw.putConnection({ id: "x", integration: "missing" }))).toMatchObject(
      { field: "integration" },
    );
    expect(await caught(() => tw.getToken("nope"))).toMatchObject({ code: "not_found" });
    await tw.putConnection({ id: "keep-1", integration: "keep" });
    expect(await caught(() => tw.deleteIntegration("keep"))).toMatchObject({ code: "conflict" });
  });

  it("keeps every secret out of the database bytes, the events and the errors", async () => {
    const tw = await openTw();
    const events: TokenEvent[] = [];
    tw.on("event", (e) => events.push(e));
    await tw.putIntegration(passwordIntegration("sec"));
    await tw.putConnection({
      id: "sec-1",
      integration: "sec",
      username: "ann",
      password: "ann-password-value",
    });
    const token = await tw.getToken("sec-1");
    const refreshToken = (await storeOf(tw).getConnection("sec-1"))!.token!.refreshToken!;
    await tw.putConnection({
      id: "sec-bad",
      integration: "sec",
      username: "ann",
      password: "wrong-password-value",
    });
    const error = await caught(() => tw.getToken("sec-bad"));
    const secrets = [
      "pw-secret-value",
      "ann-password-value",
      "wrong-password-value",
      token.accessToken,
      refreshToken,
    ];

    let stored: string;
    if (db.files.length > 0) {
      const bytes = await Promise.all(
        db.files.map((f) => readFile(f).catch(() => Buffer.alloc(0))),
      );
      stored = Buffer.concat(bytes).toString("latin1");
      expect(stored).toContain("tw_connections"); // we are reading the real file
    } else {
      const pg = (await import("pg")).default;
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const tables = [
        "tw_integrations",
        "tw_connections",
        "tw_events",
        "tw_leases",
        "tw_pending_authorizations",
      ];
      const dumps = await Promise.all(
        tables.map((t) => client.query(`SELECT t::text AS row FROM ${t} t`)),
      );
      await client.end();
      stored = dumps.flatMap((d) => d.rows.map((r: { row: string }) => r.row)).join("\n");
      expect(stored).toContain("sec-1");
    }
    const visible = [
      stored,
      JSON.stringify(events),
      JSON.stringify(error),
      error.message,
      JSON.stringify(await tw.listConnections()),
    ];
    for (const secret of secrets) for (const text of visible) expect(text).not.toContain(secret);
  });
});
