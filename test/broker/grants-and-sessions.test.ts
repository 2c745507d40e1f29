import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tokenwarden } from "../../src/index.js";
import { openBroker, openBrokerWithStore, storeOf } from "../fixtures/broker.js";
import { runCli } from "../fixtures/cli.js";
import { TEST_SECRET_KEY } from "../fixtures/databases.js";
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
import { startTestService, type TestService } from "../fixtures/service.js";
import type { LooseJson } from "../helpers.js";

/**
 * Every grant starts as its seed describes, under every session mode, from a clean
 * start: client credentials and password (`none` only means never renewed), and
 * `refresh_token` from the refresh token it was given. Through the library, the REST
 * service and the command line, which must all agree.
 */
const API_KEY = "grants-test-key-0123456789";
const GRANTS = ["client_credentials", "password", "refresh_token"] as const;
const SESSIONS = ["auto", "fixed", "none"] as const;
const COMBOS = GRANTS.flatMap((grant) => SESSIONS.map((session) => [grant, session] as const));

let op: OidcFixture;
let pw: PasswordServerFixture;
let quirk: QuirkServer;
let service: TestService;
let scratch: Tokenwarden;

beforeAll(async () => {
  op = await startOidcProvider();
  pw = await startPasswordServer({
    clients: [{ clientId: "pw-app", clientSecret: "pw-secret", grants: ["password"] }],
    users: [{ username: "ann", password: "ann-password" }],
    accessTokenLifetimeSeconds: 120,
  });
  quirk = await startQuirkServer();
  service = await startTestService({ apiKey: API_KEY });
  scratch = await openBrokerWithStore({
    database: "sqlite::memory:",
    secretKey: TEST_SECRET_KEY,
    scheduler: false,
  });
  await scratch.putIntegration({
    key: "code",
    grantType: "authorization_code",
    authorizationUrl: op.authorizationUrl,
    tokenUrl: op.tokenUrl,
    clientId: BASIC_CLIENT_ID,
    clientSecret: BASIC_CLIENT_SECRET,
    scopes: ["api:read"],
  });
});
afterAll(async () => {
  await scratch.close();
  await service.close();
  await op.close();
  await pw.close();
  await quirk.close();
});

/** A refresh token of its own for each connection: oidc-provider rotates them. */
async function freshRefreshToken(): Promise<string> {
  const id = `code-${Math.random().toString(36).slice(2)}`;
  await scratch.putConnection({ id, integration: "code" });
  const { url } = await scratch.startAuthorization(id, { redirectUri: DEFAULT_REDIRECT_URI });
  await scratch.completeAuthorization((await loginAndConsent(url)).searchParams);
  const token = (await storeOf(scratch).getConnection(id))?.token?.refreshToken;
  if (token === undefined) throw new Error("oidc-provider issued no refresh token");
  return token;
}

function integrationFor(grant: (typeof GRANTS)[number], session: string, key: string) {
  if (grant === "password") {
    return {
      key,
      grantType: grant,
      tokenUrl: pw.tokenUrl,
      clientId: "pw-app",
      clientSecret: "pw-secret",
      clientAuth: "body",
      session,
    };
  }
  return {
    key,
    grantType: grant,
    tokenUrl: op.tokenUrl,
    clientId: BASIC_CLIENT_ID,
    clientSecret: BASIC_CLIENT_SECRET,
    ...(grant === "client_credentials" ? { scopes: ["api:read"] } : {}),
    session,
  };
}

async function connectionFor(grant: (typeof GRANTS)[number], id: string, key: string) {
  if (grant === "password")
    return { id, integration: key, username: "ann", password: "ann-password" };
  if (grant === "refresh_token")
    return { id, integration: key, refreshToken: await freshRefreshToken() };
  return { id, integration: key };
}

/** The token is one the server issued and still honours. */
async function expectLive(grant: (typeof GRANTS)[number], accessToken: string) {
  expect(accessToken).toMatch(/\S{8,}/);
  if (grant !== "password") expect((await op.introspect(accessToken)).active).toBe(true);
}

const rest = (method: string, path: string, body?: unknown) => service.api(method, path, body);

const cliEnv = () => ({
  TOKENWARDEN_DATABASE_URL: service.database.url,
  TOKENWARDEN_SECRET_KEY: TEST_SECRET_KEY,
});

describe("from a clean start", () => {
  it.each(COMBOS)("library: grant %s, session %s", async (grant, session) => {
    const key = `lib-${grant}-${session}`.replaceAll("_", "-");
    const tw = await openBroker(service.database);
    try {
      const events: string[] = [];
      tw.on("event", (e) => events.push(`${e.action}:${e.outcome}`));
      await tw.putIntegration(integrationFor(grant, session, key));
      await tw.putConnection(await connectionFor(grant, key, key));
      const token = await tw.getToken(key);
      await expectLive(grant, token.accessToken);
      expect(events).toEqual([`${grant === "refresh_token" ? "refresh" : "obtain"}:success`]);
      expect((await tw.getConnection(key)).status).toBe("active");
      // Served again from what it has, without another request.
      expect((await tw.getToken(key)).accessToken).toBe(token.accessToken);
      expect(events).toHaveLength(1);
    } finally {
      await tw.close();
    }
  });

  it.each(COMBOS)("REST: grant %s, session %s", async (grant, session) => {
    const key = `rest-${grant}-${session}`.replaceAll("_", "-");
    const { key: _key, ...integration } = integrationFor(grant, session, key);
    expect((await rest("PUT", `/v1/integrations/${key}`, integration)).status).toBe(201);
    const { id: _id, ...connection } = await connectionFor(grant, key, key);
    expect((await rest("PUT", `/v1/connections/${key}`, connection)).status).toBe(201);
    const token = await rest("GET", `/v1/connections/${key}/token`);
    expect(token.status).toBe(200);
    await expectLive(grant, token.json.accessToken);
    const events = await rest("GET", `/v1/connections/${key}/events`);
    expect(events.json.events.map((e: LooseJson) => e.outcome)).toEqual(["success"]);
  });

  it.each(COMBOS)("CLI: grant %s, session %s", async (grant, session) => {
    const key = `cli-${grant}-${session}`.replaceAll("_", "-");
    const integration = integrationFor(grant, session, key);
    const add = await runCli(
      [
        "integration",
        "add",
        key,
        "--grant-type",
        grant,
        "--token-url",
        integration.tokenUrl,
        "--client-id",
        integration.clientId,
        "--client-secret",
        integration.clientSecret,
        "--set",
        `session=${session}`,
        ...(grant === "password" ? ["--client-auth", "body"] : []),
        ...(grant === "client_credentials" ? ["--scopes", "api:read"] : []),
      ],
      { env: cliEnv() },
    );
    expect(add.stderr).toBe("");
    expect(add.code).toBe(0);
    const connection = await connectionFor(grant, key, key);
    const credentials: string[] =
      "username" in connection
        ? ["--username", String(connection.username), "--password", String(connection.password)]
        : "refreshToken" in connection
          ? ["--refresh-token", String(connection.refreshToken)]
          : [];
    const conn = await runCli(["connection", "add", key, "--integration", key, ...credentials], {
      env: cliEnv(),
    });
    expect(conn.code).toBe(0);
    const token = await runCli(["token", key], { env: cliEnv() });
    expect(token.stderr).toBe("");
    expect(token.code).toBe(0);
    await expectLive(grant, token.stdout.trim());
  });
});

describe("the whole token response", () => {
  const secretRefreshToken = "rt-never-shown-0123456789";
  beforeAll(() => {
    quirk.on("/salesforce-token", (_req, res) =>
      json(res, 200, {
        access_token: "sf-access-token-0123456789",
        refresh_token: secretRefreshToken,
        token_type: "Bearer",
        expires_in: 3600,
        instance_url: "https://acme.my.salesforce.example",
        id_token: "header.payload.signature",
        signature: "abc=",
      }),
    );
  });

  const expectExtra = (extra: LooseJson) => {
    expect(extra).toEqual({
      instance_url: "https://acme.my.salesforce.example",
      id_token: "header.payload.signature",
      signature: "abc=",
    });
  };

  it("is returned as extra, never with the refresh token, by the library, REST and the CLI", async () => {
    const integration = {
      grantType: "client_credentials",
      tokenUrl: quirk.url("/salesforce-token"),
      clientId: "sf-app",
      clientSecret: "sf-secret",
    };
    expect((await rest("PUT", "/v1/integrations/sf", integration)).status).toBe(201);
    expect((await rest("PUT", "/v1/connections/sf-prod", { integration: "sf" })).status).toBe(201);

    const viaRest = await rest("GET", "/v1/connections/sf-prod/token");
    expectExtra(viaRest.json.extra);
    expect(JSON.stringify(viaRest.json)).not.toContain(secretRefreshToken);

    const tw = await openBroker(service.database);
    try {
      const viaLibrary = await tw.getToken("sf-prod");
      expectExtra(viaLibrary.extra);
      expect(JSON.stringify(viaLibrary)).not.toContain(secretRefreshToken);
    } finally {
      await tw.close();
    }

    const viaCli = await runCli(["token", "sf-prod", "--json"], { env: cliEnv() });
    expect(viaCli.code).toBe(0);
    expectExtra(JSON.parse(viaCli.stdout).extra);
    expect(viaCli.stdout).not.toContain(secretRefreshToken);
  });
});

describe("session none", () => {
  it("a refused call is returned as it is, not sent again with the same token", async () => {
    const refusals: string[] = [];
    quirk.on("/none-token", (_req, res) =>
      json(res, 200, { access_token: "none-token-0123456789", expires_in: 60 }),
    );
    quirk.on("/none-api/orders", (req, res) => {
      refusals.push(`${req.method} ${req.body}`);
      json(res, 401, { error: "invalid_token" });
    });
    const tw = await openBroker(service.database);
    try {
      await tw.putIntegration({
        key: "none-api",
        grantType: "client_credentials",
        tokenUrl: quirk.url("/none-token"),
        clientId: "app",
        clientSecret: "secret",
        session: "none",
        apiBaseUrl: quirk.url("/none-api"),
      });
      await tw.putConnection({ id: "none-api", integration: "none-api" });
      const res = await tw.fetch("none-api", "/orders", { method: "POST", body: "order=1" });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: "invalid_token" });
      expect(refusals).toEqual(["POST order=1"]);
      const tokenRequests = quirk.requests.filter((r) => r.url.pathname === "/none-token");
      expect(tokenRequests).toHaveLength(1);
    } finally {
      await tw.close();
    }
  });
});
