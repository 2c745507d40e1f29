import { decodeJwt } from "jose";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { McpServers } from "../../src/broker/mcp-servers.js";
import { systemClock } from "../../src/core/clock.js";
import { parseConnection } from "../../src/core/connection.js";
import { parseIntegration } from "../../src/core/integration.js";
import { MCP_CLIENT_TO_FIND, resolveIntegration } from "../../src/core/resolve.js";
import type { ServerMetadata } from "../../src/core/server-metadata.js";
import { type Tokenwarden, TokenwardenError } from "../../src/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/store.js";
import { openBrokerWithStore, storeOf } from "../fixtures/broker.js";
import { runCli } from "../fixtures/cli.js";
import { TEST_SECRET_KEY } from "../fixtures/databases.js";
import { loginAndConsent } from "../fixtures/interaction.js";
import {
  CHALLENGE_METADATA_PATH,
  type McpFixture,
  startMcpServer,
} from "../fixtures/mcp-server.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  DEFAULT_CLIENTS,
  DEFAULT_REDIRECT_URI,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { openRawSqlite } from "../fixtures/raw-sqlite.js";
import { startTestService, type TestService } from "../fixtures/service.js";
import { caught } from "../helpers.js";

/**
 * Acting as the client of a remote MCP server: its RFC 9728 metadata (at the
 * well-known URL, or where its 401 points) names a real oidc-provider, where the
 * client is the integration's own, or registered (RFC 7591), through the library and
 * the REST API. Which client is chosen is tested on its own below; a client ID
 * metadata document end to end, with oidc-provider fetching it from the service
 * behind https, is in mcp-client-document.test.ts.
 */
const API_KEY = "mcp-servers-test-key-0123456789";

let op: OidcFixture;
let mcp: McpFixture;
/** The same server without a well-known document: only its 401 says where it is. */
let challengeOnly: McpFixture;
let tw: Tokenwarden;
let service: TestService;

beforeAll(async () => {
  const resourceMetadata = () => ({
    authorization_servers: [op.issuer],
    scopes_supported: ["api:read"],
  });
  mcp = await startMcpServer({ metadata: resourceMetadata });
  challengeOnly = await startMcpServer({ metadata: resourceMetadata, wellKnown: false });
  op = await startOidcProvider({
    registration: true,
    resourceServers: [mcp.url, challengeOnly.url],
    clients: [...DEFAULT_CLIENTS],
  });
  tw = await openBrokerWithStore({
    database: "sqlite::memory:",
    secretKey: TEST_SECRET_KEY,
    scheduler: false,
  });
  service = await startTestService({ apiKey: API_KEY });
});
afterAll(async () => {
  await tw?.close();
  await service?.close();
  await op?.close();
  await mcp?.close();
  await challengeOnly?.close();
});

async function authorize(id: string) {
  const { url } = await tw.startAuthorization(id, { redirectUri: DEFAULT_REDIRECT_URI });
  const callback = await loginAndConsent(url);
  return { url: new URL(url), callback };
}

describe("a registered client (RFC 7591), through the library", () => {
  let clientId: string;
  let clientSecret: string;

  it("mcpServerUrl alone: the grant, resource, API and scopes come from the server", async () => {
    const view = await tw.putIntegration({ key: "mcp", mcpServerUrl: mcp.url });
    expect(view.grantType).toBe("authorization_code");
    await tw.putConnection({ id: "mcp-1", integration: "mcp" });
    const { url, callback } = await authorize("mcp-1");
    expect(url.origin + url.pathname).toBe(op.authorizationUrl);
    expect(url.searchParams.getAll("resource")).toEqual([mcp.url]);
    expect(url.searchParams.get("scope")).toBe("api:read");
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    const stored = await storeOf(tw).getMcpClient("mcp");
    expect(stored).toMatchObject({ kind: "registered", issuer: op.issuer, clientAuth: "basic" });
    clientId = stored?.clientId as string;
    clientSecret = stored?.clientSecret as string;
    expect(clientSecret.length).toBeGreaterThan(20);
    expect(url.searchParams.get("client_id")).toBe(clientId);

    expect(callback.searchParams.get("iss")).toBe(op.issuer);
    expect((await tw.completeAuthorization(callback.searchParams)).status).toBe("active");
    const token = await tw.getToken("mcp-1");
    expect(decodeJwt(token.accessToken).aud).toBe(mcp.url);
    // The MCP server is the API: the library's fetch sends it the token.
    const res = await tw.fetch("mcp-1", mcp.url);
    expect(res.status).toBe(200);
    expect(mcp.tokens.at(-1)).toBe(token.accessToken);
  });

  it("the registered client is reused, and refreshes authenticate as it", async () => {
    await tw.putConnection({ id: "mcp-2", integration: "mcp" });
    const { url, callback } = await authorize("mcp-2");
    expect(url.searchParams.get("client_id")).toBe(clientId);
    await tw.completeAuthorization(callback.searchParams);
    const before = (await tw.getToken("mcp-2")).accessToken;
    const refreshed = await tw.refresh("mcp-2");
    expect(refreshed.status).toBe("active");
    expect((await tw.getToken("mcp-2")).accessToken).not.toBe(before);
    expect((await storeOf(tw).getMcpClient("mcp"))?.clientId).toBe(clientId);
  });

  it("the client secret is in no view or event", async () => {
    const seen = JSON.stringify([
      await tw.getIntegration("mcp"),
      await tw.listIntegrations(),
      await tw.getConnection("mcp-1"),
      await tw.listEvents("mcp-1"),
      await tw.listEvents("mcp-2"),
    ]);
    expect(seen).not.toContain(clientSecret);
    expect(seen).toContain(mcp.url);
  });

  it("a callback naming another issuer is refused (RFC 9207)", async () => {
    const { callback } = await authorize("mcp-1");
    callback.searchParams.set("iss", "https://attacker.example");
    const e = await caught(() => tw.completeAuthorization(callback.searchParams));
    expect(e.code).toBe("conflict");
    expect(e.message).toContain("RFC 9207");
  });

  it("a callback without the iss the server advertises is refused", async () => {
    const { callback } = await authorize("mcp-1");
    callback.searchParams.delete("iss");
    expect((await caught(() => tw.completeAuthorization(callback.searchParams))).code).toBe(
      "conflict",
    );
  });

  it("the metadata is found from the server's 401 when the well-known URL has none", async () => {
    await tw.putIntegration({ key: "mcp-401", mcpServerUrl: challengeOnly.url });
    await tw.putConnection({ id: "mcp-401", integration: "mcp-401" });
    const { url, callback } = await authorize("mcp-401");
    expect(challengeOnly.metadataRequests).toEqual([CHALLENGE_METADATA_PATH]);
    expect(url.searchParams.getAll("resource")).toEqual([challengeOnly.url]);
    await tw.completeAuthorization(callback.searchParams);
    expect(decodeJwt((await tw.getToken("mcp-401")).accessToken).aud).toBe(challengeOnly.url);
  });
});

describe("the integration's own client", () => {
  it("clientId given: no registration, the integration's client authorizes", async () => {
    await tw.putIntegration({
      key: "mcp-own",
      mcpServerUrl: mcp.url,
      clientId: BASIC_CLIENT_ID,
      clientSecret: BASIC_CLIENT_SECRET,
      scopes: ["api:read"],
    });
    await tw.putConnection({ id: "mcp-own", integration: "mcp-own" });
    const { url, callback } = await authorize("mcp-own");
    expect(url.searchParams.get("client_id")).toBe(BASIC_CLIENT_ID);
    await tw.completeAuthorization(callback.searchParams);
    expect(decodeJwt((await tw.getToken("mcp-own")).accessToken).aud).toBe(mcp.url);
    expect(await storeOf(tw).getMcpClient("mcp-own")).toBeUndefined();
  });
});

describe("refusals", () => {
  async function refusedWith(metadata: Record<string, unknown>, key: string) {
    const other = await startMcpServer({ metadata: () => metadata });
    try {
      await tw.putIntegration({ key, mcpServerUrl: other.url });
      await tw.putConnection({ id: key, integration: key });
      const e = await caught(() => authorize(key));
      expect(e).toBeInstanceOf(TokenwardenError);
      expect(e.code).toBe("invalid_config");
      expect(await storeOf(tw).getMcpClient(key)).toBeUndefined();
      return e;
    } finally {
      await other.close();
    }
  }

  it("metadata naming another resource (RFC 9728 §3.3)", async () => {
    const e = await refusedWith(
      { resource: "https://other.example/mcp", authorization_servers: [op.issuer] },
      "mcp-other",
    );
    expect(e.message).toContain("RFC 9728 §3.3");
  });

  it("metadata naming no authorization server", async () => {
    const e = await refusedWith({ scopes_supported: ["api:read"] }, "mcp-none");
    expect(e.message).toContain("authorization_servers");
  });

  it("an mcpServerUrl that is http off this machine, or a template", async () => {
    for (const url of ["http://mcp.example.com/mcp", "https://{tenant}.example.com/mcp"]) {
      const e = await caught(() => tw.putIntegration({ key: "bad", mcpServerUrl: url }));
      expect(e.code).toBe("invalid_config");
      expect(e.message).toContain("mcpServerUrl");
    }
  });
});

describe("which client (selection alone, with a server that takes client ID metadata documents)", () => {
  let store: Store;
  let registrations: number;
  const DOCUMENT = "https://tw.example.com/oauth/client-metadata.json";
  const REDIRECT = "https://tw.example.com/oauth/callback";

  beforeAll(async () => {
    store = await openStore({ database: "sqlite::memory:", secretKey: TEST_SECRET_KEY });
  });
  afterAll(async () => {
    await store?.close();
  });

  function servers(server: Partial<ServerMetadata>) {
    registrations = 0;
    return new McpServers({
      store,
      clock: systemClock,
      holderId: "selection-test",
      obtain: async (resource) => ({
        metadata: { resource, authorization_servers: ["https://as.example.com"] },
        maxAgeSeconds: undefined,
        metadataUrl: `${resource}/meta`,
      }),
      serverMetadata: async () => ({
        issuer: "https://as.example.com",
        authorization_endpoint: "https://as.example.com/authorize",
        token_endpoint: "https://as.example.com/token",
        ...server,
      }),
      register: async () => {
        registrations += 1;
        return {
          clientId: `registered-${registrations}`,
          clientSecret: "s3cret-value",
          clientAuth: "basic",
        };
      },
    });
  }

  function resolvedFor(key: string) {
    const integration = parseIntegration({ key, mcpServerUrl: "https://mcp.example.com/mcp" });
    const resolved = resolveIntegration(
      integration,
      parseConnection({ id: key, integration: key }),
    );
    expect(resolved.clientId).toBe(MCP_CLIENT_TO_FIND);
    return { ...resolved, mcpServerUrl: "https://mcp.example.com/mcp" };
  }

  it("an https public URL and a server that takes documents: the document's URL is the client", async () => {
    const picked = await servers({
      client_id_metadata_document_supported: true,
      registration_endpoint: "https://as.example.com/reg",
    }).prepare(resolvedFor("doc"), { redirectUri: REDIRECT, clientMetadataUrl: DOCUMENT });
    expect(picked).toMatchObject({ clientId: DOCUMENT, clientAuth: "none" });
    expect(picked.clientSecret).toBeUndefined();
    expect(registrations).toBe(0);
    expect(picked.apiBaseUrl).toBe("https://mcp.example.com/mcp");
    expect(picked.resource).toEqual(["https://mcp.example.com/mcp"]);
    // The callback and refreshes speak as the same client.
    const later = await servers({ client_id_metadata_document_supported: true }).prepare(
      resolvedFor("doc"),
    );
    expect(later.clientId).toBe(DOCUMENT);
  });

  it("an http public URL: registration instead", async () => {
    const picked = await servers({
      client_id_metadata_document_supported: true,
      registration_endpoint: "https://as.example.com/reg",
    }).prepare(resolvedFor("http"), {
      redirectUri: "http://tw.example.com/oauth/callback",
      clientMetadataUrl: "http://tw.example.com/oauth/client-metadata.json",
    });
    expect(picked).toMatchObject({ clientId: "registered-1", clientAuth: "basic" });
    expect(registrations).toBe(1);
  });

  it("an http public URL and no registration endpoint: refused, saying why", async () => {
    const e = await caught(() =>
      servers({ client_id_metadata_document_supported: true }).prepare(resolvedFor("refused"), {
        redirectUri: "http://tw.example.com/oauth/callback",
        clientMetadataUrl: "http://tw.example.com/oauth/client-metadata.json",
      }),
    );
    expect(e.code).toBe("invalid_config");
    expect(e.message).toContain("https");
    expect(e.message).toContain("set clientId");
  });

  it("a server without documents: registration, reused until the redirect URL changes", async () => {
    const mcpServers = servers({ registration_endpoint: "https://as.example.com/reg" });
    const start = { redirectUri: REDIRECT, clientMetadataUrl: DOCUMENT };
    expect((await mcpServers.prepare(resolvedFor("reg"), start)).clientId).toBe("registered-1");
    expect((await mcpServers.prepare(resolvedFor("reg"), start)).clientId).toBe("registered-1");
    const moved = { redirectUri: "https://moved.example.com/oauth/callback" };
    expect((await mcpServers.prepare(resolvedFor("reg"), moved)).clientId).toBe("registered-2");
  });

  it("no client yet outside an authorization: refused", async () => {
    const e = await caught(() =>
      servers({ registration_endpoint: "https://as.example.com/reg" }).prepare(
        resolvedFor("never"),
      ),
    );
    expect(e.code).toBe("invalid_config");
    expect(e.message).toContain("authorize");
  });
});

async function api(method: string, path: string, body?: unknown, key: string | null = API_KEY) {
  const answer = await service.api(method, path, body, {
    key,
    headers: { accept: "application/json" },
  });
  return { status: answer.status, body: answer.json, text: answer.text };
}

describe("through the REST API", () => {
  it("the client ID metadata document is public", async () => {
    const res = await api("GET", "/oauth/client-metadata.json", undefined, null);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      client_id: `${service.url}/oauth/client-metadata.json`,
      client_name: "Tokenwarden",
      redirect_uris: [`${service.url}/oauth/callback`],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    });
  });

  it("the OpenAPI shows mcpServerUrl and the document", async () => {
    const spec = (await api("GET", "/openapi.json")).body;
    expect(spec.paths["/oauth/client-metadata.json"].get.operationId).toBe(
      "getClientMetadataDocument",
    );
    expect(JSON.stringify(spec.components.schemas)).toContain("mcpServerUrl");
  });

  it("an MCP integration authorized through the service, its registered secret nowhere", async () => {
    const put = await api("PUT", "/v1/integrations/rest-mcp", {
      key: "rest-mcp",
      mcpServerUrl: mcp.url,
    });
    expect(put.status).toBe(201);
    expect(put.body.grantType).toBe("authorization_code");
    await api("PUT", "/v1/connections/rest-mcp", { id: "rest-mcp", integration: "rest-mcp" });
    const started = await api("GET", "/v1/connections/rest-mcp/authorize");
    expect(started.status).toBe(200);
    const callback = await loginAndConsent(started.body.url);
    expect(callback.origin + callback.pathname).toBe(`${service.url}/oauth/callback`);
    const page = await request(callback);
    expect(page.statusCode).toBe(200);
    await page.body.text();
    const connection = await api("GET", "/v1/connections/rest-mcp");
    expect(connection.body.status).toBe("active");
    const token = await api("GET", "/v1/connections/rest-mcp/token");
    expect(decodeJwt(token.body.accessToken).aud).toBe(mcp.url);

    const registered = new URL(started.body.url).searchParams.get("client_id") as string;
    const below = await openStore({ database: service.database.url, secretKey: TEST_SECRET_KEY });
    const secret = (await below.getMcpClient("rest-mcp"))?.clientSecret as string;
    await below.close();
    expect(secret.length).toBeGreaterThan(20);
    // Sealed in its row: the client id is there in the clear, the secret is not.
    const raw = await openRawSqlite(service.database.files[0] as string);
    const rows = JSON.stringify(raw.query("select * from tw_mcp_clients"));
    raw.close();
    expect(rows).toContain(registered);
    expect(rows).not.toContain(secret);
    const seen = [
      (await api("GET", "/v1/integrations/rest-mcp")).text,
      (await api("GET", "/v1/integrations")).text,
      connection.text,
      (await api("GET", "/v1/connections/rest-mcp/events")).text,
    ].join("\n");
    expect(seen).not.toContain(secret);
    expect(seen).toContain(mcp.url);
  });
});

describe("through the CLI", () => {
  it("integration add --mcp-server-url: no client id asked for, authorization_code", async () => {
    const env = {
      TOKENWARDEN_DATABASE_URL: `${service.database.url}-cli`,
      TOKENWARDEN_SECRET_KEY: TEST_SECRET_KEY,
    };
    const add = await runCli(
      ["integration", "add", "cli-mcp", "--mcp-server-url", mcp.url, "--json"],
      { env },
    );
    expect(add.stderr).toBe("");
    expect(add.code).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({
      key: "cli-mcp",
      grantType: "authorization_code",
      mcpServerUrl: mcp.url,
    });
  });
});
