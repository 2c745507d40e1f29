import { createHash, X509Certificate } from "node:crypto";
import { Agent, request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Tokenwarden } from "../../src/index.js";
import { TEST_SECRET_KEY } from "../fixtures/databases.js";
import {
  DEFAULT_REDIRECT_URI,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { type TestPki, testPki } from "../fixtures/test-pki.js";
import { caught, type LooseJson } from "../helpers.js";

/**
 * `tls_client_auth` (RFC 8705 §2.1) against a real mutual-TLS server: oidc-provider
 * behind a Node https server that asks for client certificates, the client registered
 * with the subject DN of its certificate. The integration's `tls.cert`/`tls.key` are
 * the only credential; without them, or with a certificate another CA signed, the
 * same request is refused.
 */
const CLIENT_ID = "mtls-client";

let pki: TestPki;
let op: OidcFixture;
let tw: Tokenwarden;

beforeAll(async () => {
  pki = await testPki();
  op = await startOidcProvider({
    mutualTls: { ca: pki.ca, ...pki.server },
    clients: [
      {
        clientId: CLIENT_ID,
        authMethod: "tls_client_auth",
        tlsClientAuthSubjectDn: pki.clientSubjectDn,
        certificateBound: true,
        grantTypes: ["client_credentials"],
        redirectUris: [DEFAULT_REDIRECT_URI],
      },
    ],
  });
  tw = await Tokenwarden.open({
    database: "sqlite::memory:",
    secretKey: TEST_SECRET_KEY,
    scheduler: false,
    webhooks: false,
  });
});
afterAll(async () => {
  await tw?.close();
  await op?.close();
});

async function integration(
  key: string,
  settings: { clientAuth: "tls_client_auth" | "none"; cert?: string; key?: string },
): Promise<void> {
  const { clientAuth, ...tls } = settings;
  await tw.putIntegration({
    key,
    grantType: "client_credentials",
    tokenUrl: op.tokenUrl,
    revocationUrl: op.revocationUrl,
    clientId: CLIENT_ID,
    clientAuth,
    tls: { mode: "trust", ca: pki.ca, ...tls },
  });
  await tw.putConnection({ id: key, integration: key });
}

it("gets client-credentials tokens with the client certificate, bound to it", async () => {
  await integration("mtls", { clientAuth: "tls_client_auth", ...pki.client });
  const token = await tw.getToken("mtls");
  expect(token.accessToken).toMatch(/\S/);
  expect(op.clientCertificates.at(-1)).toContain("CN=tokenwarden-test-client");
  expect(op.tokenRequestLog.at(-1)?.status).toBe(200);

  // RFC 8705 §3.1: the provider bound the token to the certificate it saw. Asked by the
  // same client over mutual TLS, introspection names that certificate's thumbprint.
  const introspection = await introspect(token.accessToken);
  expect(introspection.active).toBe(true);
  const thumbprint = createHash("sha256")
    .update(new X509Certificate(pki.client.cert).raw)
    .digest("base64url");
  expect(introspection.cnf).toEqual({ "x5t#S256": thumbprint });
});

it("renews and revokes over mutual TLS too", async () => {
  const first = (await tw.getToken("mtls")).accessToken;
  const requests = op.clientCertificates.length;
  await tw.refresh("mtls");
  const second = (await tw.getToken("mtls")).accessToken;
  expect(second).not.toBe(first);
  expect(op.clientCertificates.slice(requests)).toEqual([
    expect.stringContaining("CN=tokenwarden-test-client"),
  ]);
  // RFC 7009 at the revocation endpoint, authenticated by the certificate alone.
  await tw.revoke("mtls");
  expect((await introspect(second)).active).toBe(false);
});

/** RFC 7662, as the client itself over mutual TLS. */
async function introspect(token: string): Promise<LooseJson> {
  const dispatcher = new Agent({ connect: { ca: pki.ca, ...pki.client } });
  try {
    const res = await request(op.introspectionUrl, {
      method: "POST",
      dispatcher,
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: CLIENT_ID, token }).toString(),
    });
    return await res.body.json();
  } finally {
    await dispatcher.close();
  }
}

it("is refused the same request without a certificate", async () => {
  // tls_client_auth needs tls.cert, so the configuration says `none`: the request is the
  // same (client_id in the body, no secret), only the certificate is missing.
  await integration("mtls-bare", { clientAuth: "none" });
  const error = await caught(() => tw.getToken("mtls-bare"));
  expect(error).toMatchObject({ oauthError: "invalid_client" });
  expect(op.clientCertificates.at(-1)).toBeUndefined();
});

it("is refused with a certificate another CA signed", async () => {
  const stranger = await testPki();
  await integration("mtls-stranger", { clientAuth: "tls_client_auth", ...stranger.client });
  const error = await caught(() => tw.getToken("mtls-stranger"));
  expect(error).toMatchObject({ oauthError: "invalid_client" });
  // It reached the provider with a certificate, of the same subject: the CA is what failed.
  expect(op.clientCertificates.at(-1)).toContain("CN=tokenwarden-test-client");
});
