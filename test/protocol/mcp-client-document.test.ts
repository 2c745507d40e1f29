import { decodeJwt } from "jose";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HttpsFront, startHttpsFront } from "../fixtures/https-front.js";
import { loginAndConsent } from "../fixtures/interaction.js";
import { type McpFixture, startMcpServer } from "../fixtures/mcp-server.js";
import { type OidcFixture, startOidcProvider } from "../fixtures/oidc-provider.js";
import { startTestService, type TestService } from "../fixtures/service.js";
import { type TestPki, testPki } from "../fixtures/test-pki.js";
import type { LooseJson } from "../helpers.js";

/**
 * A client ID metadata document end to end: oidc-provider with its (experimental,
 * draft 02) support for them, and no registration endpoint; the service behind an
 * https front, so its public URL, and so the document's URL, is https. An MCP
 * integration is authorized through the provider's own login and consent pages: the
 * client id Tokenwarden sends is the document's URL, the provider fetches the
 * document from the service to know the client, and the token it issues names that
 * URL as its client. What differs from the internet: the provider trusts the test CA
 * and may fetch from 127.0.0.1 (client-metadata-documents.ts).
 */
const API_KEY = "mcp-client-document-test-key-0123456789";

let pki: TestPki;
let trusting: Agent;
let front: HttpsFront;
let op: OidcFixture;
let mcp: McpFixture;
let service: TestService;
let documentUrl: string;

beforeAll(async () => {
  pki = await testPki();
  trusting = new Agent({ connect: { ca: pki.ca } });
  front = await startHttpsFront(pki.server);
  documentUrl = `${front.url}/oauth/client-metadata.json`;
  mcp = await startMcpServer({
    metadata: () => ({ authorization_servers: [op.issuer], scopes_supported: ["api:read"] }),
  });
  op = await startOidcProvider({
    resourceServers: [mcp.url],
    clientIdMetadataDocuments: { ca: pki.ca },
  });
  service = await startTestService({ apiKey: API_KEY, settings: { publicUrl: front.url } });
  front.forwardTo(service.url);
});
afterAll(async () => {
  await service?.close();
  await front?.close();
  await op?.close();
  await mcp?.close();
  await trusting?.close();
});

/** The service's API through its https front, as anyone at its public URL calls it. */
async function api(method: "GET" | "PUT" | "POST", path: string, body?: unknown) {
  const res = await request(`${front.url}${path}`, {
    method,
    dispatcher: trusting,
    headers: {
      authorization: `Bearer ${API_KEY}`,
      accept: "application/json",
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: JSON.parse(text) as LooseJson };
}

describe("a client ID metadata document, with oidc-provider fetching it", () => {
  it("the provider advertises documents and has no registration endpoint", async () => {
    const res = await fetch(`${op.issuer}/.well-known/openid-configuration`);
    const metadata = (await res.json()) as Record<string, unknown>;
    expect(metadata.client_id_metadata_document_supported).toBe(true);
    expect(metadata.registration_endpoint).toBeUndefined();
  });

  it("an MCP integration authorizes as the document's URL, and its token names that client", async () => {
    expect(
      (await api("PUT", "/v1/integrations/doc-mcp", { key: "doc-mcp", mcpServerUrl: mcp.url }))
        .status,
    ).toBe(201);
    await api("PUT", "/v1/connections/doc-mcp", { id: "doc-mcp", integration: "doc-mcp" });

    const started = await api("GET", "/v1/connections/doc-mcp/authorize");
    expect(started.status).toBe(200);
    const authorization = new URL(started.body.url);
    expect(authorization.searchParams.get("client_id")).toBe(documentUrl);
    expect(authorization.searchParams.get("redirect_uri")).toBe(`${front.url}/oauth/callback`);

    const callback = await loginAndConsent(started.body.url);
    // The provider knew the client only from the document it fetched from the service.
    expect(op.documentFetches).toContain(documentUrl);
    expect(op.registeredClients).toEqual([]);
    expect(callback.origin + callback.pathname).toBe(`${front.url}/oauth/callback`);
    expect(callback.searchParams.get("code")).not.toBeNull();
    const page = await request(callback, { dispatcher: trusting });
    await page.body.text();
    expect(page.statusCode).toBe(200);

    const connection = await api("GET", "/v1/connections/doc-mcp");
    expect(connection.body.status).toBe("active");
    const token = await api("GET", "/v1/connections/doc-mcp/token");
    const claims = decodeJwt(token.body.accessToken);
    expect(claims.client_id).toBe(documentUrl);
    expect(claims.aud).toBe(mcp.url);

    // The refresh speaks as the same client (no secret: `none`, as the document says).
    const refreshed = await api("POST", "/v1/connections/doc-mcp/refresh");
    expect(refreshed.status).toBe(200);
    const again = await api("GET", "/v1/connections/doc-mcp/token");
    expect(again.body.accessToken).not.toBe(token.body.accessToken);
    expect(decodeJwt(again.body.accessToken).client_id).toBe(documentUrl);
  });

  it("the document the provider read is the one the service serves at its public URL", async () => {
    const res = await request(documentUrl, { dispatcher: trusting });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toMatchObject({
      client_id: documentUrl,
      redirect_uris: [`${front.url}/oauth/callback`],
      token_endpoint_auth_method: "none",
    });
  });
});
