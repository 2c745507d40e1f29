import { generateKeyPairSync } from "node:crypto";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Tokenwarden, TokenwardenError } from "../../src/index.js";
import { openBrokerWithStore, storeOf } from "../fixtures/broker.js";
import { runCli } from "../fixtures/cli.js";
import { TEST_SECRET_KEY } from "../fixtures/databases.js";
import { loginAndConsent } from "../fixtures/interaction.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  DEFAULT_CLIENTS,
  DEFAULT_REDIRECT_URI,
  type OidcFixture,
  POST_CLIENT_ID,
  POST_CLIENT_SECRET,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { startTestService, type TestService } from "../fixtures/service.js";
import { caught, type LooseJson } from "../helpers.js";

/**
 * Discovery, signed client assertions, `auto`, introspection, resource indicators and
 * the RFC 9207 `iss` check, each turned on in a real oidc-provider and used through
 * the library, the REST API and the CLI.
 */
const API_KEY = "protocol-a-test-key-0123456789";
const RESOURCE = "https://api.example.com/";
const JWT_SECRET = "client-secret-jwt-0123456789abcdef0123456789";
const CALLBACK = "http://127.0.0.1:4999/oauth/callback";
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const PRIVATE_PEM = ec.privateKey.export({ format: "pem", type: "pkcs8" }).toString();
const PRIVATE_JWK = JSON.stringify(ec.privateKey.export({ format: "jwk" }));
const PUBLIC_JWK = {
  ...ec.publicKey.export({ format: "jwk" }),
  kid: "k1",
  alg: "ES256",
  use: "sig",
};

let op: OidcFixture;
let tw: Tokenwarden;
let service: TestService;

beforeAll(async () => {
  op = await startOidcProvider({
    resourceServers: [RESOURCE],
    clients: [
      ...DEFAULT_CLIENTS.map((c) => ({ ...c, redirectUris: [...c.redirectUris, CALLBACK] })),
      {
        clientId: "pkjwt-client",
        authMethod: "private_key_jwt",
        jwks: { keys: [PUBLIC_JWK] },
        grantTypes: ["client_credentials", "authorization_code", "refresh_token"],
        redirectUris: [DEFAULT_REDIRECT_URI],
      },
      {
        clientId: "secretjwt-client",
        clientSecret: JWT_SECRET,
        authMethod: "client_secret_jwt",
        grantTypes: ["client_credentials"],
        redirectUris: [DEFAULT_REDIRECT_URI],
      },
    ],
  });
  tw = await openBrokerWithStore({
    database: "sqlite::memory:",
    secretKey: TEST_SECRET_KEY,
    scheduler: false,
  });
  service = await startTestService({ apiKey: API_KEY });
});
afterAll(async () => {
  await tw.close();
  await service.close();
  await op.close();
});

async function cc(key: string, fields: Record<string, unknown>) {
  await tw.putIntegration({
    key,
    grantType: "client_credentials",
    discoveryUrl: op.issuer,
    scopes: ["api:read"],
    ...fields,
  });
  await tw.putConnection({ id: key, integration: key });
  return tw.getToken(key);
}

describe("discovery (library)", () => {
  it("an issuer alone fills the endpoints", async () => {
    const token = await cc("disc", {
      clientId: BASIC_CLIENT_ID,
      clientSecret: BASIC_CLIENT_SECRET,
    });
    expect(token.accessToken.length).toBeGreaterThan(20);
    const view = await tw.getIntegration("disc");
    expect(view.tokenUrl).toBeUndefined(); // discovered at use, not written into the integration
  });

  it("the metadata URL itself works too, and the integration's own tokenUrl wins", async () => {
    const e = await caught(() =>
      cc("disc-own", {
        discoveryUrl: `${op.issuer}/.well-known/openid-configuration`,
        tokenUrl: `${op.issuer}/no-such-token-endpoint`,
        clientId: BASIC_CLIENT_ID,
        clientSecret: BASIC_CLIENT_SECRET,
      }),
    );
    expect(e).toBeInstanceOf(TokenwardenError);
    expect(e.message).toContain("/no-such-token-endpoint");
  });
});

describe("client authentication (library)", () => {
  it("private_key_jwt with a PEM key and a kid", async () => {
    const token = await cc("pkjwt-pem", {
      clientId: "pkjwt-client",
      clientAuth: "private_key_jwt",
      clientPrivateKey: PRIVATE_PEM,
      clientKeyId: "k1",
    });
    expect(token.scope).toBe("api:read");
    const view = (await tw.getIntegration("pkjwt-pem")) as LooseJson;
    expect(view.clientPrivateKey).toEqual({ set: true });
    expect(JSON.stringify(view)).not.toContain("PRIVATE KEY");
  });

  it("private_key_jwt with a JWK", async () => {
    const token = await cc("pkjwt-jwk", {
      clientId: "pkjwt-client",
      clientAuth: "private_key_jwt",
      clientPrivateKey: PRIVATE_JWK,
      clientKeyAlg: "ES256",
    });
    expect(token.accessToken.length).toBeGreaterThan(20);
  });

  it("private_key_jwt with another key is refused as invalid_client", async () => {
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" })
      .privateKey.export({ format: "pem", type: "pkcs8" })
      .toString();
    const e = await caught(() =>
      cc("pkjwt-wrong", {
        clientId: "pkjwt-client",
        clientAuth: "private_key_jwt",
        clientPrivateKey: other,
      }),
    );
    expect(e.oauthError).toBe("invalid_client");
  });

  it("client_secret_jwt", async () => {
    const token = await cc("secretjwt", {
      clientId: "secretjwt-client",
      clientSecret: JWT_SECRET,
      clientAuth: "client_secret_jwt",
    });
    expect(token.scope).toBe("api:read");
  });

  it("auto finds what the server accepts, keeps it in the store, and starts with it", async () => {
    const before = op.tokenRequestLog.length;
    await cc("auto", {
      clientId: "secretjwt-client",
      clientSecret: JWT_SECRET,
      clientAuth: "auto",
    });
    // The client is registered for client_secret_jwt: basic, body and basic_raw are
    // refused as invalid_client, then the signed assertion is accepted.
    const first = op.tokenRequestLog.slice(before).map((e) => e.status);
    expect(first).toEqual([401, 401, 401, 200]);
    expect(await storeOf(tw).getLearnedClientAuth("auto")).toMatchObject({
      method: "client_secret_jwt",
    });
    const again = op.tokenRequestLog.length;
    await tw.refresh("auto");
    expect(op.tokenRequestLog.slice(again).map((e) => e.status)).toEqual([200]);
  });
});

describe("introspection and resource indicators (library)", () => {
  it("a token response read without a lifetime takes its expiry from introspection", async () => {
    const token = await cc("introspect", {
      clientId: BASIC_CLIENT_ID,
      clientSecret: BASIC_CLIENT_SECRET,
      // Reads the lifetime from a field the server does not send: as if it had none.
      responseMap: { expiresIn: "not_sent" },
    });
    const truth = await op.introspect(token.accessToken);
    expect(truth.active).toBe(true);
    expect(token.expiresAt).toBe(new Date((truth.exp as number) * 1000).toISOString());
  });

  it("resource on a token request gives a token for that resource", async () => {
    const token = await cc("resource", {
      clientId: BASIC_CLIENT_ID,
      clientSecret: BASIC_CLIENT_SECRET,
      resource: [RESOURCE],
    });
    expect(decodeJwt(token.accessToken).aud).toBe(RESOURCE);
  });
});

describe("authorization code with discovery, resource and iss (library)", () => {
  async function start(id: string) {
    const { url } = await tw.startAuthorization(id, { redirectUri: DEFAULT_REDIRECT_URI });
    return { url: new URL(url), callback: await loginAndConsent(url) };
  }

  beforeAll(async () => {
    await tw.putIntegration({
      key: "code",
      grantType: "authorization_code",
      discoveryUrl: op.issuer,
      clientId: BASIC_CLIENT_ID,
      clientSecret: BASIC_CLIENT_SECRET,
      scopes: ["openid", "api:read"],
      resource: [RESOURCE],
    });
    await tw.putConnection({ id: "code", integration: "code" });
  });

  it("the callback carrying the server's iss completes; the token is for the resource", async () => {
    const { url, callback } = await start("code");
    expect(url.origin + url.pathname).toBe(op.authorizationUrl);
    expect(url.searchParams.getAll("resource")).toEqual([RESOURCE]);
    expect(callback.searchParams.get("iss")).toBe(op.issuer);
    const view = await tw.completeAuthorization(callback.searchParams);
    expect(view.status).toBe("active");
    expect(decodeJwt((await tw.getToken("code")).accessToken).aud).toBe(RESOURCE);
  });

  it("a callback naming another issuer is refused (mix-up)", async () => {
    const { callback } = await start("code");
    callback.searchParams.set("iss", "https://attacker.example");
    const e = await caught(() => tw.completeAuthorization(callback.searchParams));
    expect(e.code).toBe("conflict");
    expect(e.message).toContain("RFC 9207");
  });

  it("a callback without iss from a server that advertises it is refused", async () => {
    const { callback } = await start("code");
    callback.searchParams.delete("iss");
    const e = await caught(() => tw.completeAuthorization(callback.searchParams));
    expect(e.code).toBe("conflict");
  });
});

async function api(method: string, path: string, body?: unknown): Promise<LooseJson> {
  const { status, json } = await service.api(method, path, body);
  return { status, body: json };
}

describe("through the REST API", () => {
  it("GET /v1/presets lists the catalogue, without credentials", async () => {
    const res = await api("GET", "/v1/presets");
    expect(res.status).toBe(200);
    expect(res.body.presets.length).toBeGreaterThanOrEqual(40);
    const github = res.body.presets.find((p: LooseJson) => p.name === "github");
    expect(github).toMatchObject({ displayName: "GitHub (OAuth app)", clientAuth: "body" });
    for (const p of res.body.presets) {
      expect(p.clientId).toBeUndefined();
      expect(p.clientSecret).toBeUndefined();
    }
    expect((await api("GET", "/v1/presets/github")).body.name).toBe("github");
    expect((await api("GET", "/v1/presets/nope")).status).toBe(404);
  });

  it("an integration with discovery and private_key_jwt, its key write-only", async () => {
    const put = await api("PUT", "/v1/integrations/rest-pk", {
      key: "rest-pk",
      grantType: "client_credentials",
      discoveryUrl: op.issuer,
      clientId: "pkjwt-client",
      clientAuth: "private_key_jwt",
      clientPrivateKey: PRIVATE_PEM,
      clientKeyId: "k1",
      scopes: ["api:read"],
    });
    expect(put.status).toBe(201);
    expect(put.body.clientPrivateKey).toEqual({ set: true });
    await api("PUT", "/v1/connections/rest-pk", { id: "rest-pk", integration: "rest-pk" });
    const token = await api("GET", "/v1/connections/rest-pk/token");
    expect(token.status).toBe(200);
    expect(token.body.accessToken.length).toBeGreaterThan(20);
    // Moving the discovery URL without sending the key again is refused (security rule 3).
    const moved = await api("PUT", "/v1/integrations/rest-pk", {
      key: "rest-pk",
      grantType: "client_credentials",
      discoveryUrl: "https://elsewhere.example",
      clientId: "pkjwt-client",
      clientAuth: "private_key_jwt",
    });
    expect(moved.status).toBe(400);
    expect(moved.body.error.message).toContain("clientPrivateKey");
  });
});

describe("through the CLI", () => {
  it("tokenwarden presets [--json]", async () => {
    const table = await runCli(["presets"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain("salesforce");
    const listed = JSON.parse((await runCli(["presets", "--json"])).stdout) as LooseJson[];
    expect(listed.length).toBeGreaterThanOrEqual(40);
  });

  it("integration add --discovery-url --client-auth auto, then a token", async () => {
    const dbEnv = {
      TOKENWARDEN_DATABASE_URL: `${service.database.url}-cli`,
      TOKENWARDEN_SECRET_KEY: TEST_SECRET_KEY,
    };
    const add = await runCli(
      [
        "integration",
        "add",
        "cli-disc",
        "--grant-type",
        "client_credentials",
        "--discovery-url",
        op.issuer,
        "--client-id",
        POST_CLIENT_ID,
        "--client-secret",
        POST_CLIENT_SECRET,
        "--client-auth",
        "auto",
        "--scopes",
        "api:read",
      ],
      { env: dbEnv },
    );
    expect(add.stderr).toBe("");
    expect(add.code).toBe(0);
    await runCli(["connection", "add", "cli-disc", "--integration", "cli-disc"], { env: dbEnv });
    const token = await runCli(["token", "cli-disc"], { env: dbEnv });
    expect(token.code).toBe(0);
    expect(token.stdout.trim().length).toBeGreaterThan(20);
  });
});
