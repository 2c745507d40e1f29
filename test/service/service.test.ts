import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loginAndConsent } from "../fixtures/interaction.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import {
  type ApiAnswer,
  type ApiOptions,
  startTestService,
  type TestService,
} from "../fixtures/service.js";

const API_KEY = "test-api-key-0123456789";
let op: OidcFixture;
let api: QuirkServer;
let service: TestService;
let logs = "";

beforeAll(async () => {
  op = await startOidcProvider({ redirectUris: ["http://127.0.0.1/oauth/callback"] });
  api = await startQuirkServer();
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs += chunk.toString();
      done();
    },
  });
  service = await startTestService({
    apiKey: API_KEY,
    serve: { logger: { level: "info", stream: sink } },
  });
});
afterAll(async () => {
  await service.close();
  await op.close();
  await api.close();
});

const call = (
  method: string,
  path: string,
  { body, ...options }: ApiOptions & { body?: unknown } = {},
): Promise<ApiAnswer> => service.api(method, path, body, options);

const oidcIntegration = () => ({
  grantType: "client_credentials",
  authorizationUrl: op.authorizationUrl,
  tokenUrl: op.tokenUrl,
  revocationUrl: op.revocationUrl,
  clientId: BASIC_CLIENT_ID,
  clientSecret: BASIC_CLIENT_SECRET,
  scopes: ["api:read"],
  apiBaseUrl: api.url("/api"),
});

describe("API keys", () => {
  it("refuses /v1 without a key or with a wrong one, naming the problem", async () => {
    const none = await call("GET", "/v1/integrations", { key: null });
    expect(none.status).toBe(401);
    expect(none.json.error.code).toBe("unauthorized");
    expect(none.headers["www-authenticate"]).toContain("Bearer");
    const wrong = await call("GET", "/v1/integrations", { key: "nope" });
    expect(wrong.status).toBe(401);
    expect((await call("GET", "/v1/integrations")).status).toBe(200);
  });

  it("accepts a key created and stored hashed, and does not need a restart for it", async () => {
    const created = await service.tw.apiKeys.create({ name: "ci" });
    // Unknown keys make the service look again at most once a second (a flood of bad
    // keys must not flood the database), so the new key works within about a second.
    let status = 0;
    for (let tries = 0; tries < 30 && status !== 200; tries++) {
      status = (await call("GET", "/v1/connections", { key: created.key })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    expect(JSON.stringify(await service.tw.apiKeys.list())).not.toContain(created.key);
  });
});

describe("integrations and connections", () => {
  it("creates (201), replaces (200), shows secrets only as set, and deletes", async () => {
    const created = await call("PUT", "/v1/integrations/crud", { body: oidcIntegration() });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      key: "crud",
      clientSecret: { set: true },
      tokenMethod: "POST",
    });
    expect(created.text).not.toContain(BASIC_CLIENT_SECRET);
    const { clientSecret: _omitted, ...withoutSecret } = oidcIntegration();
    const replaced = await call("PUT", "/v1/integrations/crud", {
      body: { ...withoutSecret, displayName: "CRUD" },
    });
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({ displayName: "CRUD", clientSecret: { set: true } }); // kept
    const list = await call("GET", "/v1/integrations");
    expect(list.json.integrations.map((i: { key: string }) => i.key)).toContain("crud");
    expect((await call("DELETE", "/v1/integrations/crud")).status).toBe(204);
    expect((await call("GET", "/v1/integrations/crud")).json.error.code).toBe("not_found");
  });

  it("rejects bad input with the field named, and keeps what was stored", async () => {
    await call("PUT", "/v1/integrations/bad", { body: oidcIntegration() });
    const bad = await call("PUT", "/v1/integrations/bad", {
      body: { ...oidcIntegration(), tokenUrl: "nope", colour: 1 },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ code: "invalid_config", field: "tokenUrl" });
    expect(bad.json.error.issues).toEqual(
      expect.arrayContaining([
        { field: "tokenUrl", message: "must be an absolute http(s) URL" },
        { field: "colour", message: "unknown field" },
      ]),
    );
    expect((await call("GET", "/v1/integrations/bad")).json.tokenUrl).toBe(op.tokenUrl);
    const mismatch = await call("PUT", "/v1/integrations/bad", {
      body: { ...oidcIntegration(), key: "other" },
    });
    expect(mismatch.json.error.field).toBe("key");
    const notJson = await call("PUT", "/v1/integrations/bad", {
      raw: "{oops",
      headers: { "content-type": "application/json" },
    });
    expect(notJson.status).toBe(400);
    expect(notJson.json.error.code).toBe("invalid_config");
    expect((await call("GET", "/v1/connections?status=sleeping")).json.error.field).toBe("status");
    expect((await call("GET", "/v1/integrations/bad%20key")).json.error.field).toBe("key");
  });

  it("lists connections by integration and status, and refuses to orphan them", async () => {
    await call("PUT", "/v1/integrations/listed", { body: oidcIntegration() });
    const conn = await call("PUT", "/v1/connections/listed-1", {
      body: { integration: "listed", environment: "qa", clientSecret: "conn-secret-value" },
    });
    expect(conn.status).toBe(201);
    expect(conn.json).toMatchObject({
      id: "listed-1",
      status: "active",
      clientSecret: { set: true },
    });
    expect(conn.text).not.toContain("conn-secret-value");
    const filtered = await call("GET", "/v1/connections?integration=listed&status=active");
    expect(filtered.json.connections.map((c: { id: string }) => c.id)).toEqual(["listed-1"]);
    expect((await call("GET", "/v1/connections?integration=none")).json.connections).toEqual([]);
    const blocked = await call("DELETE", "/v1/integrations/listed");
    expect(blocked.status).toBe(409);
    expect(blocked.json.error.code).toBe("conflict");
    expect((await call("DELETE", "/v1/connections/listed-1")).status).toBe(204);
    expect((await call("DELETE", "/v1/connections/listed-1")).status).toBe(404);
  });
});

describe("tokens", () => {
  beforeAll(async () => {
    await call("PUT", "/v1/integrations/tok", { body: oidcIntegration() });
    await call("PUT", "/v1/connections/tok-1", { body: { integration: "tok" } });
  });

  it("serves a token with the header ready to use, never cached by HTTP", async () => {
    const res = await call("GET", "/v1/connections/tok-1/token?minTtl=30");
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ tokenType: "Bearer", scope: "api:read" });
    expect(res.json.header).toEqual({
      name: "Authorization",
      value: `Bearer ${res.json.accessToken}`,
    });
    expect(res.headers["cache-control"]).toBe("no-store");
    expect((await call("GET", "/v1/connections/tok-1/token?minTtl=soon")).json.error.field).toBe(
      "minTtl",
    );
    expect((await call("GET", "/v1/connections/missing/token")).status).toBe(404);
  });

  it("refreshes on demand and pages the events, newest first", async () => {
    const before = (await call("GET", "/v1/connections/tok-1/token")).json.accessToken;
    const refreshed = await call("POST", "/v1/connections/tok-1/refresh");
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.status).toBe("active");
    expect((await call("GET", "/v1/connections/tok-1/token")).json.accessToken).not.toBe(before);
    const page1 = await call("GET", "/v1/connections/tok-1/events?limit=1");
    expect(page1.json.events).toHaveLength(1);
    expect(page1.json.events[0]).toMatchObject({
      trigger: "manual",
      action: "obtain",
      outcome: "success",
    });
    const page2 = await call(
      "GET",
      `/v1/connections/tok-1/events?limit=1&before=${page1.json.next}`,
    );
    expect(page2.json.events[0]).toMatchObject({ trigger: "demand" });
    expect(page2.json.events[0].id).toBeLessThan(page1.json.events[0].id);
  });

  it("a failing grant answers with the upstream error, coded", async () => {
    await call("PUT", "/v1/integrations/badsecret", {
      body: { ...oidcIntegration(), clientSecret: "wrong-secret-value" },
    });
    await call("PUT", "/v1/connections/badsecret-1", { body: { integration: "badsecret" } });
    const res = await call("GET", "/v1/connections/badsecret-1/token");
    expect(res.status).toBe(502);
    expect(res.json.error).toMatchObject({
      code: "token_endpoint_error",
      oauthError: "invalid_client",
      upstreamStatus: 401,
    });
    expect((await call("GET", "/v1/connections/badsecret-1")).json.status).toBe("needs_reauth");
    expect((await call("GET", "/v1/connections/badsecret-1/token")).json.error.code).toBe(
      "needs_reauth",
    );
  });
});

describe("the authorization code round trip through the service", () => {
  beforeAll(async () => {
    await call("PUT", "/v1/integrations/web", {
      body: {
        ...oidcIntegration(),
        grantType: "authorization_code",
        scopes: ["openid", "api:read"],
      },
    });
  });

  async function startAuthorization(id: string): Promise<string> {
    const res = await call("GET", `/v1/connections/${id}/authorize`);
    expect(res.status).toBe(302);
    return String(res.headers.location);
  }

  it("redirects with state and PKCE, and the callback shows the success message", async () => {
    await call("PUT", "/v1/connections/web-1", { body: { integration: "web" } });
    expect((await call("GET", "/v1/connections/web-1")).json.status).toBe("pending_authorization");
    expect((await call("GET", "/v1/connections/web-1/token")).json.error.code).toBe(
      "pending_authorization",
    );
    const location = new URL(await startAuthorization("web-1"));
    expect(location.searchParams.get("redirect_uri")).toBe(`${service.url}/oauth/callback`);
    expect(location.searchParams.get("state")).toMatch(/^[\w-]{43}$/);
    expect(location.searchParams.get("code_challenge_method")).toBe("S256");

    const callback = await loginAndConsent(location.toString());
    expect(callback.origin).toBe(service.url);
    const page = await call("GET", `${callback.pathname}${callback.search}`, { key: null });
    expect(page.status).toBe(200);
    expect(page.text).toContain("OAuth2 token received with success!");
    expect(page.text).toContain("postMessage");
    expect(String(page.headers["content-security-policy"])).toContain("script-src 'nonce-");
    expect((await call("GET", "/v1/connections/web-1")).json.status).toBe("active");

    const replay = await call("GET", `${callback.pathname}${callback.search}`, { key: null });
    expect(replay.status).toBe(400);
    expect(replay.text).toContain("expired or was already used");
  });

  it("the JSON form gives the URL for a popup; a denial gets its own page", async () => {
    await call("PUT", "/v1/connections/web-2", { body: { integration: "web" } });
    const started = await call("GET", "/v1/connections/web-2/authorize", {
      headers: { accept: "application/json" },
    });
    expect(started.json.redirectUri).toBe(`${service.url}/oauth/callback`);
    const callback = await loginAndConsent(started.json.url, { deny: true });
    const page = await call("GET", `${callback.pathname}${callback.search}`, { key: null });
    expect(page.status).toBe(403);
    expect(page.text).toContain("Access was denied");
    expect((await call("GET", "/v1/connections/web-2")).json.status).toBe("pending_authorization");
  });

  it("revokes at the server and forgets the tokens", async () => {
    const res = await call("POST", "/v1/connections/web-1/revoke");
    expect(res.status).toBe(200);
    expect(res.json.status).toBe("revoked");
    expect((await call("GET", "/v1/connections/web-1/token")).json.error.code).toBe("needs_reauth");
  });
});

describe("the proxy", () => {
  const accepted = new Set<string>();
  beforeAll(async () => {
    api.on("/api/echo", (req, res) => {
      const auth = req.headers.authorization ?? "";
      const token = auth.replace(/^Bearer /, "") || (req.url.searchParams.get("token") ?? "");
      if (accepted.size > 0 && !accepted.has(token))
        return json(res, 401, { error: "invalid_token" });
      json(res, 200, {
        method: req.method,
        query: Object.fromEntries(req.url.searchParams),
        tenant: req.headers["x-tenant"] ?? null,
        body: req.body,
      });
    });
    await call("PUT", "/v1/integrations/px", {
      body: {
        ...oidcIntegration(),
        requestParams: { headers: { "X-Tenant": "t9" }, query: { v: "3" } },
      },
    });
    await call("PUT", "/v1/connections/px-1", { body: { integration: "px" } });
  });

  it("places Bearer {token} and requestParams, strips the caller's API key, streams the body", async () => {
    const token = (await call("GET", "/v1/connections/px-1/token")).json.accessToken;
    const res = await call("POST", "/v1/proxy/px-1/echo?page=2", {
      raw: "x".repeat(200_000),
      headers: { "content-type": "text/plain" },
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ method: "POST", query: { page: "2", v: "3" }, tenant: "t9" });
    expect(res.json.body).toHaveLength(200_000);
    const seen = api.requests.at(-1)!;
    expect(seen.headers.authorization).toBe(`Bearer ${token}`);
    expect(JSON.stringify(seen.headers)).not.toContain(API_KEY);
  });

  it("places the token in a query parameter when the integration says so", async () => {
    await call("PUT", "/v1/integrations/pxq", {
      body: { ...oidcIntegration(), tokenPlacement: { in: "query", name: "token" } },
    });
    await call("PUT", "/v1/connections/pxq-1", { body: { integration: "pxq" } });
    const res = await call("GET", "/v1/proxy/pxq-1/echo");
    expect(res.json.query.token).toBe(
      (await call("GET", "/v1/connections/pxq-1/token")).json.accessToken,
    );
    expect(api.requests.at(-1)!.headers.authorization).toBeUndefined();
  });

  it("turns a 401 into one refresh and one retry, and returns a second 401 as it is", async () => {
    const stale = (await call("GET", "/v1/connections/px-1/token")).json.accessToken;
    accepted.add("a-token-nobody-has"); // the API now refuses every token
    const before = op.tokenRequests;
    const seen = api.requests.length;
    const res = await call("PUT", "/v1/proxy/px-1/echo", {
      raw: '{"a":1}',
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(401);
    expect(op.tokenRequests - before).toBe(1);
    const forwarded = api.requests.slice(seen);
    expect(forwarded.map((r) => r.headers.authorization)).toEqual([
      `Bearer ${stale}`,
      `Bearer ${(await call("GET", "/v1/connections/px-1/token")).json.accessToken}`,
    ]);
    expect(forwarded[1]!.body).toBe('{"a":1}'); // the held body was sent again
    accepted.clear();
  });

  it("succeeds on the retry when the refreshed token is accepted", async () => {
    const stale = (await call("GET", "/v1/connections/px-1/token")).json.accessToken;
    let refreshedToken = "";
    api.on("/api/strict", (req, res) => {
      const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
      if (token === stale) return json(res, 401, { error: "invalid_token" });
      refreshedToken = token;
      json(res, 200, { ok: true });
    });
    const res = await call("GET", "/v1/proxy/px-1/strict");
    expect(res.status).toBe(200);
    expect(refreshedToken).not.toBe("");
    expect((await call("GET", "/v1/connections/px-1/token")).json.accessToken).toBe(refreshedToken);
    const events = (await call("GET", "/v1/connections/px-1/events")).json.events;
    expect(events[0]).toMatchObject({ trigger: "retry", outcome: "success" });
  });
});

describe("operations", () => {
  it("answers health, readiness, metrics and the OpenAPI document", async () => {
    expect((await call("GET", "/healthz", { key: null })).json).toEqual({ status: "ok" });
    expect((await call("GET", "/readyz", { key: null })).json).toEqual({
      status: "ready",
      database: "sqlite",
    });
    const metrics = await call("GET", "/metrics", { key: null });
    expect(metrics.text).toMatch(
      /tokenwarden_token_requests_total\{action="obtain",trigger="demand",outcome="success",integration="[\w-]+",error_code=""\} \d+/,
    );
    expect(metrics.text).toMatch(/tokenwarden_connections\{status="active"\} \d+/);
    expect(metrics.text).toMatch(/tokenwarden_proxy_requests_total\{status="200"\} \d+/);
    expect(metrics.text).toContain("tokenwarden_token_request_duration_seconds_bucket");
    expect(metrics.text).toContain("tokenwarden_scheduler_lag_seconds");
    const openapi = await call("GET", "/openapi.json", { key: null });
    expect(openapi.json.openapi).toBe("3.1.0");
    const put = openapi.json.paths["/v1/integrations/{key}"].put;
    expect(put.requestBody.content["application/json"].schema.properties.tokenUrl).toBeDefined();
    expect(
      openapi.json.paths["/v1/connections/{id}/token"].get.parameters.map(
        (p: { name: string }) => p.name,
      ),
    ).toContain("minTtl");
    const unknown = await call("GET", "/v1/nothing");
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe("not_found");
  });

  it("never writes a secret to a log line", () => {
    expect(logs).toContain('"statusCode":200'); // the log was captured
    for (const secret of [
      API_KEY,
      BASIC_CLIENT_SECRET,
      "conn-secret-value",
      "wrong-secret-value",
    ]) {
      expect(logs).not.toContain(secret);
    }
    expect(logs).not.toMatch(/[?&]code=/);
    expect(logs).not.toMatch(/Bearer [\w-]{20,}/);
  });
});
