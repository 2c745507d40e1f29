import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenwardenError } from "../../src/core/index.js";
import {
  buildAuthorizationRequest,
  exchangeAuthorizationCode,
  readAuthorizationResponse,
  refreshAccessToken,
  requestClientCredentialsGrant,
  requestPasswordGrant,
  revokeToken,
} from "../../src/oauth/index.js";
import { loginAndConsent } from "../fixtures/interaction.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  DEFAULT_REDIRECT_URI,
  type OidcFixture,
  POST_CLIENT_ID,
  POST_CLIENT_SECRET,
  PUBLIC_CLIENT_ID,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { type PasswordServerFixture, startPasswordServer } from "../fixtures/password-server.js";
import { caught, resolved } from "../helpers.js";

let op: OidcFixture;
let pw: PasswordServerFixture;

beforeAll(async () => {
  op = await startOidcProvider({ accessTokenTtlSeconds: 300 });
  pw = await startPasswordServer({
    clients: [
      { clientId: "pw-app", clientSecret: "pw+secret/1", grants: ["password", "refresh_token"] },
    ],
    users: [{ username: "ann", password: "correct horse" }],
    accessTokenLifetimeSeconds: 120,
  });
});
afterAll(async () => {
  await op.close();
  await pw.close();
});

function oidcConfig(overrides: Record<string, unknown> = {}) {
  return resolved({
    grantType: "authorization_code",
    authorizationUrl: op.authorizationUrl,
    tokenUrl: op.tokenUrl,
    revocationUrl: op.revocationUrl,
    clientId: BASIC_CLIENT_ID,
    clientSecret: BASIC_CLIENT_SECRET,
    scopes: ["openid", "api:read"],
    ...overrides,
  });
}

/** Runs the front channel through oidc-provider's own login and consent pages. */
async function authorize(config: ReturnType<typeof oidcConfig>) {
  const request = buildAuthorizationRequest(config, { redirectUri: DEFAULT_REDIRECT_URI });
  const callback = await loginAndConsent(request.url.toString());
  const { code } = readAuthorizationResponse(callback.searchParams, request.state);
  return exchangeAuthorizationCode(config, {
    code,
    redirectUri: DEFAULT_REDIRECT_URI,
    codeVerifier: request.codeVerifier,
  });
}

describe("oidc-provider", () => {
  it("client credentials with client_secret_basic, a secret that needs form encoding", async () => {
    const token = await requestClientCredentialsGrant(
      oidcConfig({ grantType: "client_credentials", scopes: ["api:read"] }),
    );
    expect(token.accessToken.length).toBeGreaterThan(20);
    expect(token.tokenType).toBe("Bearer");
    expect(token.scope).toBe("api:read");
    expect(token.expiresAt! - token.issuedAt).toBeGreaterThan(0);
  });

  it("the same secret without the RFC's encoding is refused (what basic_raw is for)", async () => {
    const e = await caught(() =>
      requestClientCredentialsGrant(
        oidcConfig({ grantType: "client_credentials", clientAuth: "basic_raw" }),
      ),
    );
    expect(e).toBeInstanceOf(TokenwardenError);
    expect(e.code).toBe("token_endpoint_error");
    expect(e.message).not.toContain(BASIC_CLIENT_SECRET);
  });

  it("client credentials with client_secret_post", async () => {
    const token = await requestClientCredentialsGrant(
      oidcConfig({
        grantType: "client_credentials",
        clientAuth: "body",
        clientId: POST_CLIENT_ID,
        clientSecret: POST_CLIENT_SECRET,
        scopes: ["api:read"],
      }),
    );
    expect(token.scope).toBe("api:read");
  });

  it("a wrong secret is invalid_client with the server's description", async () => {
    const e = await caught(() =>
      requestClientCredentialsGrant(
        oidcConfig({ grantType: "client_credentials", clientSecret: "wrong" }),
      ),
    );
    expect(e).toMatchObject({
      code: "token_endpoint_error",
      status: 401,
      oauthError: "invalid_client",
    });
    expect(typeof e.oauthErrorDescription).toBe("string");
  });

  it("authorization code + S256 PKCE through the real login and consent pages, then rotation", async () => {
    const config = oidcConfig();
    const first = await authorize(config);
    expect(first.accessToken).toBeTruthy();
    expect(first.refreshToken).toBeTruthy();
    expect(first.raw.id_token).toBeTruthy(); // the whole response is kept

    const second = await refreshAccessToken(config, first.refreshToken!);
    expect(second.accessToken).not.toBe(first.accessToken);
    expect(second.refreshToken).toBeTruthy();
    expect(second.refreshToken).not.toBe(first.refreshToken); // rotated

    const reuse = await caught(() => refreshAccessToken(config, first.refreshToken!));
    expect(reuse).toMatchObject({ code: "token_endpoint_error", oauthError: "invalid_grant" });
  });

  it("a public client authorizes with PKCE alone", async () => {
    const token = await authorize(
      oidcConfig({ clientId: PUBLIC_CLIENT_ID, clientSecret: undefined }),
    );
    expect(token.refreshToken).toBeTruthy();
  });

  it("a denial comes back as the server's access_denied", async () => {
    const config = oidcConfig();
    const request = buildAuthorizationRequest(config, { redirectUri: DEFAULT_REDIRECT_URI });
    const callback = await loginAndConsent(request.url.toString(), { deny: true });
    const e = await caught(async () =>
      readAuthorizationResponse(callback.searchParams, request.state),
    );
    expect(e).toMatchObject({ code: "token_endpoint_error", oauthError: "access_denied" });
  });

  it("a callback with another state is refused before its code is read", async () => {
    const request = buildAuthorizationRequest(oidcConfig(), { redirectUri: DEFAULT_REDIRECT_URI });
    const callback = await loginAndConsent(request.url.toString());
    const e = await caught(async () =>
      readAuthorizationResponse(callback.searchParams, "someone-elses-state"),
    );
    expect(e).toMatchObject({ code: "conflict", field: "state" });
  });

  it("revokes a refresh token (RFC 7009), after which it no longer works", async () => {
    const config = oidcConfig();
    const token = await authorize(config);
    await revokeToken(config, token.refreshToken!, "refresh_token");
    const e = await caught(() => refreshAccessToken(config, token.refreshToken!));
    expect(e).toMatchObject({ oauthError: "invalid_grant" });
  });

  it("counts what reached the token endpoint", () => {
    expect(op.tokenRequests).toBeGreaterThan(5);
  });
});

describe("@node-oauth/oauth2-server", () => {
  // This server does not form-decode Basic credentials: body authentication suits it.
  const config = () =>
    resolved(
      {
        grantType: "password",
        tokenUrl: pw.tokenUrl,
        clientId: "pw-app",
        clientSecret: "pw+secret/1",
        clientAuth: "body",
      },
      { username: "ann", password: "correct horse" },
    );

  it("grants a token for the resource owner's password, then refreshes it", async () => {
    const token = await requestPasswordGrant(config(), {
      username: "ann",
      password: "correct horse",
    });
    expect(token.accessToken).toBeTruthy();
    expect(token.refreshToken).toBeTruthy();
    expect(token.expiresAt! - token.issuedAt).toBeGreaterThan(100_000);
    const next = await refreshAccessToken(config(), token.refreshToken!);
    expect(next.accessToken).not.toBe(token.accessToken);
  });

  it("works with basic_raw for the same reason", async () => {
    const token = await requestPasswordGrant(
      { ...config(), clientAuth: "basic_raw" },
      { username: "ann", password: "correct horse" },
    );
    expect(token.accessToken).toBeTruthy();
  });

  it("a bad password is invalid_grant", async () => {
    const e = await caught(() =>
      requestPasswordGrant(config(), { username: "ann", password: "nope" }),
    );
    expect(e).toMatchObject({
      code: "token_endpoint_error",
      oauthError: "invalid_grant",
      status: 400,
    });
    expect(e.message).not.toContain("nope");
  });
});
