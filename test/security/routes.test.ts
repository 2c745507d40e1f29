import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  putAcme,
  type Recorder,
  type SecurityService,
  sendJson,
  startRecorder,
  startSecurityService,
  tokenEndpoint,
} from "./harness.js";

/**
 * Default deny, decided on the matched route (PRODUCT.md "Security rules" 1): an
 * attacker with no key tries every spelling of a `/v1` route that a router might
 * decode, normalize or strip to the same route, and must never be served.
 */
let tw: SecurityService;
let upstream: Recorder;
let clientKey: string;

beforeAll(async () => {
  tw = await startSecurityService();
  upstream = await startRecorder();
  tokenEndpoint(upstream);
  upstream.on("/api/*", (_req, res) => sendJson(res, 200, { api: "reached" }));
  await putAcme(tw, upstream, "/api");
  const client = await tw.service.tw.apiKeys.create({ name: "client", role: "client" });
  clientKey = client.key;
});
afterAll(async () => {
  await tw.close();
  await upstream.close();
});

/** Spellings of `GET /v1/connections/c1/token` (the token itself) that a router may reach. */
const TOKEN_SPELLINGS = [
  "/v1/connections/c1/token",
  "/%761/connections/c1/token",
  "/v%31/connections/c1/token",
  "/%76%31/connections/c1/token",
  "/v1/%63onnections/c1/token",
  "/v1/connections/%631/token",
  "/v1/connections/c1/%74oken",
  "/v1/connections/c1/token?",
  "/v1/connections/c1/token?minTtl=0",
  "/v1/connections/c1/token#",
  "/v1/connections/c1/token?minTtl=1",
  "http://127.0.0.1/v1/connections/c1/token",
  "http://evil.example/v1/connections/c1/token",
  "https://127.0.0.1:1/v1/connections/c1/token",
];

/** Spellings that a lenient router would normalize to a route, and this one does not. */
const NEAR_SPELLINGS = [
  "/V1/connections/c1/token",
  "/v1//connections/c1/token",
  "//v1/connections/c1/token",
  "/v1/./connections/c1/token",
  "/./v1/connections/c1/token",
  "/v1/x/../connections/c1/token",
  "/healthz/../v1/connections/c1/token",
  "/healthz/%2e%2e/v1/connections/c1/token",
  "/healthz%2F..%2Fv1/connections/c1/token",
  "/v1/connections/c1/token/",
  "/v1/connections/c1/token;x",
  "/v1/connections/c1/token%00",
  "/v1/connections/c1/token%2F",
  "/v1%2Fconnections%2Fc1%2Ftoken",
  "/%2576%2531/connections/c1/token",
  "/v1/connections/c1/token%09",
  "/v1/connections/c1/token%20",
  "/v1/connections/c1/to%6Ben/..",
  "HTTP://127.0.0.1/v1/connections/c1/token",
  "*/v1/connections/c1/token",
];

describe("default deny on the matched route", () => {
  it("serves no spelling of the token route without a key: 401, and no token in the body", async () => {
    for (const target of [...TOKEN_SPELLINGS, ...NEAR_SPELLINGS]) {
      const res = await tw.raw(target, { key: null });
      expect([400, 401], `${target} answered ${res.status}`).toContain(res.status);
      expect(res.text).not.toContain("access-");
    }
    // Every spelling that reaches the route is refused for want of a key, not by luck.
    for (const target of TOKEN_SPELLINGS) {
      expect((await tw.raw(target, { key: null })).status, target).toBe(401);
    }
    // ... and the same spellings do reach it with a key (so the test tries real routes).
    for (const target of TOKEN_SPELLINGS) {
      const res = await tw.raw(target);
      expect(res.status, target).toBe(200);
      expect(res.json.accessToken).toMatch(/^access-/);
    }
  });

  it("refuses HEAD, spelled differently, as GET", async () => {
    for (const target of ["/%761/connections/c1/token", "http://x/v1/connections/c1/token"]) {
      expect((await tw.raw(target, { method: "HEAD", key: null })).status, target).toBe(401);
    }
  });

  it("answers an unmatched path 401 without a key, 404 with one (any role)", async () => {
    for (const target of NEAR_SPELLINGS) {
      const res = await tw.raw(target, { key: null });
      expect([400, 401], target).toContain(res.status);
      expect(res.text).not.toContain("access-");
    }
    expect((await tw.raw("/nothing-here", { key: null })).status).toBe(401);
    expect((await tw.raw("/nothing-here")).status).toBe(404);
    expect((await tw.raw("/nothing-here", { key: clientKey })).status).toBe(404);
    expect((await tw.raw("/V1/connections/c1/token")).status).toBe(404);
    expect((await tw.raw("/v1/nothing", { key: "wrong" })).status).toBe(401);
  });

  it("writes nothing through a spelled write route without a key", async () => {
    const body = JSON.stringify({
      grantType: "client_credentials",
      tokenUrl: "https://evil.example/token",
      clientId: "evil",
    });
    for (const target of [
      "/%761/integrations/acme",
      "/v1/%69ntegrations/acme",
      "http://127.0.0.1/v1/integrations/acme",
    ]) {
      const res = await tw.raw(target, {
        method: "PUT",
        key: null,
        headers: { "content-type": "application/json", "content-length": String(body.length) },
      });
      expect(res.status, target).toBe(401);
    }
    expect((await tw.call("GET", "/v1/integrations/acme")).json.tokenUrl).toBe(
      `${upstream.origin}/token`,
    );
  });

  it("does not proxy through a spelled proxy route without a key", async () => {
    const before = upstream.seen.length;
    for (const target of [
      "/%761/proxy/c1/x",
      "/v1/pro%78y/c1/x",
      "/v1/proxy/c1/x",
      "http://127.0.0.1/v1/proxy/c1/x",
    ]) {
      expect((await tw.raw(target, { key: null })).status, target).toBe(401);
    }
    expect(upstream.seen.length).toBe(before);
  });

  it("keeps a client key to its routes whatever the spelling: 403 forbidden", async () => {
    for (const target of [
      "/v1/integrations",
      "/%761/integrations",
      "/v1/%69ntegrations",
      "http://127.0.0.1/v1/integrations",
      "/v1/schemas",
      "/v1/events/stream",
      "/v1/connections/c1/authorize",
    ]) {
      const res = await tw.raw(target, { key: clientKey });
      expect(res.status, target).toBe(403);
      expect(res.json.error.code).toBe("forbidden");
    }
  });

  it("leaves public only the routes declared public", async () => {
    for (const path of [
      "/healthz",
      "/readyz",
      "/metrics",
      "/",
      "/admin/main.js",
      "/admin/vendor/eventsource-parser.js",
      "/admin/app.css",
      "/openapi.json",
    ]) {
      expect((await tw.raw(path, { key: null })).status, path).toBe(200);
    }
    // The asterisk form reaches the public page (the router reads it as `/`), nothing else.
    const asterisk = await tw.raw("*", { key: null });
    expect(asterisk.headers["content-type"]).toContain("text/html");
    expect(asterisk.text).not.toContain("access-");
    // The redirect URL answers its own page (a stale state here), never a 401.
    expect((await tw.raw("/oauth/callback?state=x&code=y", { key: null })).status).toBe(400);
  });

  it("requires a key on every documented route, and an admin key unless it is a client route", async () => {
    const doc = (await tw.raw("/openapi.json", { key: null })).json as {
      paths: Record<string, Record<string, unknown>>;
    };
    const clientRoutes = new Set([
      "get /v1/connections",
      "get /v1/connections/{id}",
      "get /v1/connections/{id}/token",
      "get /v1/connections/{id}/events",
      "post /v1/connections/{id}/dpop-proof",
      // The preset catalogue holds no secret (routes/presets.ts).
      "get /v1/presets",
      "get /v1/presets/{name}",
      ...["get", "head", "post", "put", "patch", "delete", "options"].map(
        (m) => `${m} /v1/proxy/{id}/{path}`,
      ),
    ]);
    const publicRoutes = new Set([
      "get /healthz",
      "get /readyz",
      "get /metrics",
      "get /oauth/callback",
      // What an MCP server's authorization server reads; nothing secret (routes/authorization.ts).
      "get /oauth/client-metadata.json",
      // Connect links: the link's token is the credential (test/service/connect.test.ts).
      "get /connect/{token}",
      "post /connect/{token}",
    ]);
    let checked = 0;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const method of Object.keys(methods)) {
        const route = `${method} ${path}`;
        if (publicRoutes.has(route)) continue;
        const target = path.replace("{id}", "c1").replace("{key}", "acme").replace("{path}", "x");
        const upper = method.toUpperCase();
        const none = await tw.raw(target, { method: upper, key: null });
        expect(none.status, `${route} without a key`).toBe(401);
        const client = await tw.raw(target, { method: upper, key: clientKey });
        if (clientRoutes.has(route))
          expect(client.status, `${route} with a client key`).not.toBe(403);
        else expect(client.status, `${route} with a client key`).toBe(403);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(15);
  });
});

describe("security headers", () => {
  it("sends nosniff on every kind of answer", async () => {
    const answers = [
      await tw.raw("/healthz", { key: null }),
      await tw.raw("/v1/integrations", { key: null }), // 401
      await tw.raw("/v1/integrations", { key: clientKey }), // 403
      await tw.raw("/nothing"), // 404
      await tw.raw("/%zz"), // undecodable
      await tw.raw("/oauth/callback?state=x", { key: null }),
      await tw.raw("/", { key: null }),
      await tw.raw("/admin/main.js", { key: null }),
      await tw.raw("/metrics", { key: null }),
      await tw.raw("/openapi.json", { key: null }),
      await tw.raw("/v1/connections/c1/token"),
      await tw.raw("/v1/proxy/c1/thing"),
    ];
    for (const answer of answers) {
      expect(answer.headers["x-content-type-options"], JSON.stringify(answer.headers)).toBe(
        "nosniff",
      );
    }
    expect(answers.map((a) => a.status)).toEqual([
      200, 401, 403, 404, 400, 400, 200, 200, 200, 200, 200, 200,
    ]);
    expect(answers[4]?.status).toBe(400);
    expect(answers[4]?.json.error.code).toBe("invalid_request");
  });

  it("frames no page and leaks no referrer", async () => {
    for (const path of ["/", "/oauth/callback?state=x"]) {
      const page = await tw.raw(path, { key: null });
      expect(page.headers["content-type"]).toContain("text/html");
      expect(page.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
      expect(page.headers["x-frame-options"]).toBe("DENY");
      expect(page.headers["referrer-policy"]).toBe("no-referrer");
    }
  });
});
