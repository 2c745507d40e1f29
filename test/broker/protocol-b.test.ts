import { generateKeyPairSync } from "node:crypto";
import { decodeProtectedHeader, jwtVerify } from "jose";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Tokenwarden } from "../../src/index.js";
import {
  memoryDatabase,
  postgresDatabase,
  TEST_SECRET_KEY,
  type TestDatabase,
} from "../fixtures/databases.js";
import {
  DEVICE_CLIENT,
  DEVICE_GRANT,
  deviceIntegration,
  startDeviceProvider,
} from "../fixtures/device-provider.js";
import { approveDeviceCode } from "../fixtures/interaction.js";
import type { OidcFixture } from "../fixtures/oidc-provider.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { startTestService, type TestService } from "../fixtures/service.js";
import { caught, type LooseJson } from "../helpers.js";

/**
 * Protocol breadth (b) against real servers: the device grant and DPoP (with nonces)
 * against oidc-provider, through the library and the service; JWT bearer and token
 * exchange against a small server of ours that verifies what oidc-provider cannot
 * (it implements neither grant); rate limits shared by two processes on PostgreSQL.
 */
const API_KEY = "protocol-b-test-key-0123456789";

let op: OidcFixture;
let quirk: QuirkServer;
let tw: Tokenwarden;

beforeAll(async () => {
  op = await startDeviceProvider({ dpop: true });
  quirk = await startQuirkServer();
  tw = await Tokenwarden.open({
    database: "sqlite::memory:",
    secretKey: TEST_SECRET_KEY,
    scheduler: false,
  });
  await tw.putIntegration({
    key: "device",
    ...deviceIntegration(op),
    revocationUrl: op.revocationUrl,
    apiBaseUrl: op.issuer,
    dpop: true,
  });
});
afterAll(async () => {
  await tw.close();
  await op.close();
  await quirk.close();
});

async function authorizeOnDevice(id: string): Promise<void> {
  const started = await tw.startDeviceAuthorization(id);
  expect(started.userCode).toMatch(/\S/);
  expect(started.verificationUri).toBe(`${op.issuer}/device`);
  expect(started.interval).toBeGreaterThan(0);
  await approveDeviceCode(started.verificationUriComplete as string);
  await tw.waitForDeviceAuthorization(id);
}

describe("device grant (RFC 8628) with DPoP-bound tokens (RFC 9449), against oidc-provider", () => {
  it("polls until the person approves, then every token request and API call carries a proof", async () => {
    await tw.putConnection({ id: "tv", integration: "device" });
    expect((await tw.getConnection("tv")).status).toBe("pending_authorization");
    await authorizeOnDevice("tv");
    expect((await tw.getConnection("tv")).status).toBe("active");
    // The provider was polled before the approval (authorization_pending) and once after.
    const polls = op.tokenRequestLog.filter((e) => e.grantType === DEVICE_GRANT);
    expect(polls.at(-1)?.status).toBe(200);

    const token = await tw.getToken("tv");
    expect(token.tokenType).toBe("DPoP");
    expect(token.header.value).toBe(`DPoP ${token.accessToken}`);
    // The token is bound: oidc-provider's userinfo refuses it as a bearer token...
    const bearer = await request(op.userinfoUrl, {
      headers: { authorization: `Bearer ${token.accessToken}` },
    });
    await bearer.body.dump();
    expect(bearer.statusCode).toBe(401);
    // ...and takes it with the proof (ath, the provider's nonce) the library adds.
    const me = await tw.fetch("tv", "/me");
    expect(me.status).toBe(200);
    expect(((await me.json()) as { sub: string }).sub).toBe("test-user");

    // A refresh proves the same key; the new token works the same way.
    await tw.refresh("tv");
    const renewed = await tw.getToken("tv");
    expect(renewed.accessToken).not.toBe(token.accessToken);
    expect((await tw.fetch("tv", "/me")).status).toBe(200);

    // A workflow calling the API itself gets a proof bound to the current token.
    const { proof } = await tw.dpopProof("tv", { method: "GET", url: op.userinfoUrl });
    expect(decodeProtectedHeader(proof).typ).toBe("dpop+jwt");
    const own = await request(op.userinfoUrl, {
      headers: { authorization: renewed.header.value, dpop: proof },
    });
    await own.body.dump();
    expect(own.statusCode).toBe(200);

    // Revocation carries a proof too, and the provider takes it.
    await tw.revoke("tv");
    const [revoked] = await tw.listEvents("tv", { limit: 1 });
    expect(revoked).toMatchObject({ action: "revoke", outcome: "success", httpStatus: 200 });
  });

  it("ends with access_denied when the person refuses", async () => {
    await tw.putConnection({ id: "tv-denied", integration: "device" });
    const started = await tw.startDeviceAuthorization("tv-denied");
    await approveDeviceCode(started.verificationUriComplete as string, { deny: true });
    const error = await caught(() => tw.waitForDeviceAuthorization("tv-denied"));
    expect(error.oauthError).toBe("access_denied");
    expect((await tw.getConnection("tv-denied")).status).toBe("pending_authorization");
  });
});

describe("the service: POST /v1/connections/:id/authorize and /dpop-proof", () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ apiKey: API_KEY, database: memoryDatabase });
  });
  afterAll(async () => service.close());

  async function call(method: "GET" | "POST" | "PUT", path: string, body?: unknown) {
    const { status, json } = await service.api(method, path, body);
    return { status, body: json };
  }

  it("answers the user code, polls, and hands out proofs", async () => {
    const integration = (await tw.getIntegration("device")) as LooseJson;
    await call("PUT", "/v1/integrations/device", {
      ...integration,
      clientSecret: DEVICE_CLIENT.clientSecret,
      createdAt: undefined,
      updatedAt: undefined,
    });
    expect((await call("PUT", "/v1/connections/svc", { integration: "device" })).status).toBe(201);
    const started = await call("POST", "/v1/connections/svc/authorize");
    expect(started.status).toBe(200);
    expect(Object.keys(started.body).sort()).toEqual([
      "expiresAt",
      "interval",
      "userCode",
      "verificationUri",
      "verificationUriComplete",
    ]);
    await approveDeviceCode(started.body.verificationUriComplete);
    await service.tw.waitForDeviceAuthorization("svc");
    const token = await call("GET", "/v1/connections/svc/token");
    expect(token.body.tokenType).toBe("DPoP");
    expect(token.body.header.value).toBe(`DPoP ${token.body.accessToken}`);
    const proof = await call("POST", "/v1/connections/svc/dpop-proof", {
      method: "GET",
      url: op.userinfoUrl,
    });
    const me = await request(op.userinfoUrl, {
      headers: { authorization: token.body.header.value, dpop: proof.body.proof },
    });
    await me.body.dump();
    expect(me.statusCode).toBe(200);
  });
});

describe("JWT bearer (RFC 7523) and token exchange (RFC 8693), against a verifying fixture", () => {
  it("signs a new assertion per request, which the server verifies with the public key", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const seen: Array<Record<string, unknown>> = [];
    quirk.on("/jwt/token", async (req, res) => {
      if (req.form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer")
        return json(res, 400, { error: "unsupported_grant_type" });
      try {
        const { payload, protectedHeader } = await jwtVerify(
          req.form.get("assertion") ?? "",
          publicKey,
          { audience: quirk.url("/jwt/token"), issuer: "svc@acme" },
        );
        seen.push({ ...payload, kid: protectedHeader.kid });
        json(res, 200, { access_token: `jwt-${seen.length}`, expires_in: 3600 });
      } catch {
        json(res, 400, { error: "invalid_grant" });
      }
    });
    await tw.putIntegration({
      key: "jwt",
      grantType: "jwt_bearer",
      tokenUrl: quirk.url("/jwt/token"),
      clientId: "svc-client",
      clientPrivateKey: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
      clientKeyId: "k1",
      parameters: ["user"],
      assertion: { issuer: "svc@acme", subject: "{user}@acme", claims: { scope: "read" } },
    });
    await tw.putConnection({ id: "jwt-ann", integration: "jwt", parameters: { user: "ann" } });
    expect((await tw.getToken("jwt-ann")).accessToken).toBe("jwt-1");
    await tw.refresh("jwt-ann");
    expect((await tw.getToken("jwt-ann")).accessToken).toBe("jwt-2");
    expect(seen[0]).toMatchObject({ sub: "ann@acme", scope: "read", kid: "k1" });
    expect(seen[0]?.jti).not.toBe(seen[1]?.jti);
    // The private key is a write-only secret.
    expect((await tw.getIntegration("jwt")).clientPrivateKey).toEqual({ set: true });
  });

  it("exchanges another connection's current token, or a given one", async () => {
    quirk.on("/sts/token", (req, res) => {
      const f = req.form;
      if (f.get("grant_type") !== "urn:ietf:params:oauth:grant-type:token-exchange")
        return json(res, 400, { error: "unsupported_grant_type" });
      json(res, 200, {
        access_token: `exchanged:${f.get("subject_token")}:${f.get("subject_token_type")}:${f.get("audience")}:${f.get("requested_token_type")}`,
        issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
        token_type: "Bearer",
        expires_in: 600,
      });
    });
    await tw.putIntegration({
      key: "sts",
      grantType: "token_exchange",
      tokenUrl: quirk.url("/sts/token"),
      clientId: "sts-client",
      clientSecret: "sts-secret",
      audience: "https://backend.example",
      requestedTokenType: "urn:ietf:params:oauth:token-type:jwt",
    });
    await tw.putConnection({
      id: "sts-chained",
      integration: "sts",
      subjectConnectionId: "jwt-ann",
    });
    const subject = (await tw.getToken("jwt-ann")).accessToken;
    expect((await tw.getToken("sts-chained")).accessToken).toBe(
      `exchanged:${subject}:urn:ietf:params:oauth:token-type:access_token:https://backend.example:urn:ietf:params:oauth:token-type:jwt`,
    );
    await tw.putConnection({ id: "sts-given", integration: "sts", subjectToken: "given-subject" });
    expect((await tw.getToken("sts-given")).accessToken).toMatch(/^exchanged:given-subject:/);
    expect((await tw.getConnection("sts-given")).subjectToken).toEqual({ set: true });
    const both = await caught(() =>
      tw.putConnection({
        id: "sts-both",
        integration: "sts",
        subjectToken: "x",
        subjectConnectionId: "jwt-ann",
      }),
    );
    expect(both.code).toBe("invalid_config");
  });
});

describe("rate limits, shared by two processes on PostgreSQL", () => {
  let db: TestDatabase;
  let a: Tokenwarden;
  let b: Tokenwarden;
  beforeAll(async () => {
    db = await postgresDatabase();
    a = await Tokenwarden.open({ database: db.url, secretKey: TEST_SECRET_KEY, scheduler: false });
    b = await Tokenwarden.open({ database: db.url, secretKey: TEST_SECRET_KEY, scheduler: false });
    quirk.on("/rl/token", (_req, res) => json(res, 200, { access_token: "rl", expires_in: 3600 }));
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await db.drop();
  });

  it("lets `requests` calls through per window across both, then answers 429 with Retry-After", async () => {
    quirk.on("/rl/api/ok", (_req, res) => json(res, 200, { ok: true }));
    await a.putIntegration({
      key: "rl",
      grantType: "client_credentials",
      tokenUrl: quirk.url("/rl/token"),
      clientId: "rl",
      clientSecret: "rl-secret",
      apiBaseUrl: quirk.url("/rl/api"),
      rateLimit: { requests: 3, perSeconds: 3600 },
    });
    await a.putConnection({ id: "rl-1", integration: "rl" });
    const statuses = [];
    for (const tw of [a, b, a]) statuses.push((await tw.fetch("rl-1", "/ok")).status);
    expect(statuses).toEqual([200, 200, 200]);
    const before = quirk.requests.filter((r) => r.url.pathname === "/rl/api/ok").length;
    const over = await caught(() => b.fetch("rl-1", "/ok"));
    expect(over.code).toBe("rate_limited");
    expect(over.retryAfterSeconds).toBeGreaterThan(0);
    expect(quirk.requests.filter((r) => r.url.pathname === "/rl/api/ok").length).toBe(before);
  });

  it("holds every process's calls after the API's own 429 with Retry-After", async () => {
    let served = 0;
    quirk.on("/rl/api/busy", (_req, res) => {
      served++;
      json(res, 429, { error: "slow down" }, { "retry-after": "120" });
    });
    await a.putConnection({ id: "rl-2", integration: "rl" });
    expect((await a.fetch("rl-2", "/busy")).status).toBe(429);
    const held = await caught(() => b.fetch("rl-2", "/busy"));
    expect(held.code).toBe("rate_limited");
    expect(held.retryAfterSeconds).toBeGreaterThan(100);
    expect(served).toBe(1);
  });
});
