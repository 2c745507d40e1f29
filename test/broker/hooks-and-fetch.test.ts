import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ManualClock, type TokenEvent, type Tokenwarden } from "../../src/index.js";
import { openBrokerWithStore, storeOf } from "../fixtures/broker.js";
import { sqliteDatabase, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { caught } from "../helpers.js";

const HOOK_ROOT = resolve("test/.tmp");
let server: QuirkServer;
let db: TestDatabase;
let dir: string;
let tw: Tokenwarden;
let clock: ManualClock;
let events: TokenEvent[];

/** Tokens the API accepts; the token endpoint adds each one it issues. */
const valid = new Set<string>();
let issued = 0;

beforeAll(async () => {
  server = await startQuirkServer();
  db = await sqliteDatabase();
  // Inside the project: vitest's module loader resolves a leading /tmp as project-relative.
  await mkdir(HOOK_ROOT, { recursive: true });
  dir = await mkdtemp(join(HOOK_ROOT, "hooks-"));
  server.on("/token", (_req, res) => {
    const token = `tok-${++issued}`;
    valid.add(token);
    json(res, 200, { access_token: token, expires_in: 600 });
  });
  server.on("/api/orders", (req, res) => {
    const given =
      req.headers.authorization?.replace(/^Bearer /, "") ??
      req.url.searchParams.get("access_token") ??
      "";
    if (!valid.has(given)) return json(res, 401, { error: "invalid_token" });
    json(res, 200, { orders: [1, 2], tenant: req.headers["x-tenant"] ?? null, body: req.body });
  });
});
afterAll(async () => {
  await server.close();
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

async function fresh(): Promise<Tokenwarden> {
  clock = new ManualClock(Date.now());
  tw = await openBrokerWithStore({
    database: db.url,
    secretKey: TEST_SECRET_KEY,
    scheduler: false,
    clock,
  });
  events = [];
  tw.on("event", (e) => events.push(e));
  return tw;
}
afterEach(async () => {
  await tw.close();
});

describe("refresh hook", () => {
  it("runs a JS module with the documented input and uses its output as a token response", async () => {
    const hookPath = join(dir, "hook.mjs");
    await writeFile(
      hookPath,
      `export default async function (input) {
         if (input.refreshToken === "dead") return { errorResponse: { error: "invalid_grant", error_description: "gone" } };
         return { access_token: "hooked-" + input.refreshToken + "-" + input.parameters.region,
                  token_type: "bearer", expires_in: "120", refresh_token: "next-rt",
                  echo: { clientId: input.clientId, hasSecret: input.clientSecret !== undefined, tokenUrl: input.tokenUrl, scope: input.scope } };
       }`,
    );
    await fresh();
    await tw.putIntegration({
      key: "hooked",
      grantType: "refresh_token",
      tokenUrl: server.url("/token"),
      clientId: "app",
      clientSecret: "hook-client-secret",
      scopes: ["a", "b"],
      parameters: ["region"],
      refreshHook: hookPath,
    });
    await tw.putConnection({
      id: "h1",
      integration: "hooked",
      refreshToken: "start-rt",
      parameters: { region: "eu" },
    });
    const token = await tw.getToken("h1");
    expect(token.accessToken).toBe("hooked-start-rt-eu");
    expect(Date.parse(token.expiresAt!)).toBe(clock.now() + 120_000);
    const stored = (await storeOf(tw).getConnection("h1"))!.token!;
    expect(stored.refreshToken).toBe("next-rt");
    expect(stored.raw.echo).toEqual({
      clientId: "app",
      hasSecret: true,
      tokenUrl: server.url("/token"),
      scope: "a b",
    });
    expect(events.at(-1)).toMatchObject({ action: "hook", outcome: "success", trigger: "demand" });

    clock.advance(3600_000);
    expect((await tw.getToken("h1")).accessToken).toBe("hooked-next-rt-eu");

    await tw.putConnection({
      id: "h2",
      integration: "hooked",
      refreshToken: "dead",
      parameters: { region: "us" },
    });
    expect(await caught(() => tw.getToken("h2"))).toMatchObject({
      code: "token_endpoint_error",
      oauthError: "invalid_grant",
    });
    expect((await tw.getConnection("h2")).status).toBe("needs_reauth");
    expect(events.at(-1)).toMatchObject({
      action: "hook",
      outcome: "failure",
      errorDescription: "invalid_grant: gone",
    });
  });

  it("records a hook that throws as hook_error, so its user can see why", async () => {
    const hookPath = join(dir, "broken.mjs");
    await writeFile(hookPath, `export function refresh() { throw new Error("backend said 403"); }`);
    await fresh();
    await tw.putIntegration({
      key: "broken",
      grantType: "client_credentials",
      tokenUrl: server.url("/token"),
      clientId: "app",
      refreshHook: hookPath,
    });
    await tw.putConnection({ id: "b1", integration: "broken" });
    const e = await caught(() => tw.getToken("b1"));
    expect(e).toMatchObject({ code: "hook_error" });
    expect(e.message).toContain("backend said 403");
    expect(events.at(-1)).toMatchObject({
      action: "hook",
      outcome: "failure",
      errorCode: "hook_error",
    });
    expect((await tw.getConnection("b1")).status).toBe("error");
  });

  it("POSTs the input to an HTTP(S) hook endpoint", async () => {
    server.on("/hook", (req, res) => {
      const input = JSON.parse(req.body) as { refreshToken: string };
      json(res, 200, { access_token: `remote-${input.refreshToken}`, expires_in: 60 });
    });
    await fresh();
    await tw.putIntegration({
      key: "remote",
      grantType: "refresh_token",
      tokenUrl: server.url("/token"),
      clientId: "app",
      refreshHook: server.url("/hook"),
    });
    await tw.putConnection({ id: "r1", integration: "remote", refreshToken: "rt-1" });
    expect((await tw.getToken("r1")).accessToken).toBe("remote-rt-1");
    expect(server.requests.at(-1)!.headers["content-type"]).toBe("application/json");
  });
});

describe("fetch", () => {
  async function setUp(overrides: Record<string, unknown> = {}) {
    await fresh();
    await tw.putIntegration({
      key: "api",
      grantType: "client_credentials",
      tokenUrl: server.url("/token"),
      clientId: "app",
      apiBaseUrl: server.url("/api"),
      requestParams: { headers: { "X-Tenant": "{tenant}" }, query: { v: "2" } },
      parameters: ["tenant"],
      ...overrides,
    });
    await tw.putConnection({ id: "api-1", integration: "api", parameters: { tenant: "t1" } });
  }

  it("places the token and request parameters", async () => {
    await setUp();
    const res = await tw.fetch("api-1", "/orders", { method: "POST", body: "hello" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ orders: [1, 2], tenant: "t1", body: "hello" });
    const req = server.requests.at(-1)!;
    expect(req.url.pathname).toBe("/api/orders");
    expect(req.url.searchParams.get("v")).toBe("2");
  });

  it("refreshes once and retries once on a 401", async () => {
    await setUp();
    const first = await tw.getToken("api-1");
    valid.delete(first.accessToken); // the API stops accepting it before its expiry
    const before = server.requests.length;
    const res = await tw.fetch("api-1", "orders", { method: "POST", body: "again" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ body: "again" });
    const seen = server.requests
      .slice(before)
      .map((r) => `${r.url.pathname} ${r.headers.authorization ?? ""}`);
    expect(seen).toEqual([
      `/api/orders Bearer ${first.accessToken}`,
      "/token ",
      `/api/orders Bearer tok-${issued}`,
    ]);
    expect(events.at(-1)).toMatchObject({ trigger: "retry", outcome: "success" });
  });

  it("returns the second refusal as it is, after one refresh", async () => {
    server.on("/api/never", (_req, res) => json(res, 403, { error: "forbidden" }));
    await setUp({ tokenPlacement: { in: "query" } });
    const before = server.requests.length;
    const res = await tw.fetch("api-1", "/never");
    expect(res.status).toBe(403);
    const paths = server.requests.slice(before).map((r) => r.url.pathname);
    expect(paths.filter((p) => p === "/api/never")).toHaveLength(2);
    expect(events.filter((e) => e.trigger === "retry")).toHaveLength(1); // one refresh, no more
    expect(server.requests.at(-1)!.url.searchParams.get("access_token")).toMatch(/^tok-/);
  });

  it("treats a body matching expiredBodyPattern as a refused token", async () => {
    server.on("/api/soft", (req, res) => {
      const given = req.headers.authorization?.replace(/^Bearer /, "") ?? "";
      json(
        res,
        200,
        valid.has(given) ? { ok: true } : { status: "error", message: "Token expired" },
      );
    });
    await setUp({ expiredBodyPattern: "[Tt]oken expired" });
    const first = await tw.getToken("api-1");
    valid.delete(first.accessToken);
    const res = await tw.fetch("api-1", "/soft");
    expect(await res.json()).toEqual({ ok: true });
  });

  it("gives up on an API silent for longer than the integration's timeoutMs", async () => {
    const held: Array<import("node:http").ServerResponse> = [];
    server.on("/api/silent", (_req, res) => {
      held.push(res); // never answers
    });
    server.on("/api/stalls", (_req, res) => {
      held.push(res);
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("a first part, then nothing");
    });
    await setUp({ timeoutMs: 1000 });
    try {
      const error = await caught(() => tw.fetch("api-1", "/silent"));
      expect(error).toMatchObject({ code: "timeout" });
      expect(String((error as Error).message)).toContain("1000 ms");
      const res = await tw.fetch("api-1", "/stalls");
      expect(res.status).toBe(200);
      const reading = await caught(() => res.text());
      expect(reading).toMatchObject({ code: "UND_ERR_BODY_TIMEOUT" });
    } finally {
      for (const res of held) res.destroy();
    }
  });

  it("does not retry a body it cannot send again", async () => {
    await setUp();
    valid.clear();
    const before = server.requests.length;
    const res = await tw.fetch("api-1", "/orders", {
      method: "POST",
      body: Readable.toWeb(Readable.from(["streamed"])) as ReadableStream,
    });
    expect(res.status).toBe(401);
    expect(
      server.requests.slice(before).filter((r) => r.url.pathname === "/api/orders"),
    ).toHaveLength(1);
  });
});
