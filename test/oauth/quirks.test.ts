import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock, TokenwardenError } from "../../src/core/index.js";
import {
  refreshAccessToken,
  requestClientCredentialsGrant,
  requestPasswordGrant,
  revokeToken,
} from "../../src/oauth/index.js";
import { json, type QuirkServer, startQuirkServer, text } from "../fixtures/quirk-server.js";
import { caught, resolved } from "../helpers.js";

const SECRET = "a:b/c+d=e%f&g";
let server: QuirkServer;
let tlsServer: QuirkServer;
const clock = new ManualClock(1_700_000_000_000);

beforeAll(async () => {
  server = await startQuirkServer();
  tlsServer = await startQuirkServer({ https: true });
});
afterAll(async () => {
  await server.close();
  await tlsServer.close();
});

function lastRequest() {
  const req = server.requests.at(-1);
  if (req === undefined) throw new Error("no request recorded");
  return req;
}

describe("client authentication", () => {
  it("basic form-urlencodes id and secret before Base64 (RFC 6749 §2.3.1)", async () => {
    server.on("/token", (_req, res) =>
      json(res, 200, { access_token: "AT", token_type: "bearer", expires_in: 60 }),
    );
    const config = resolved({
      tokenUrl: server.url("/token"),
      clientId: "my app",
      clientSecret: SECRET,
      scopes: ["a", "b"],
    });
    const token = await requestClientCredentialsGrant(config, { clock });
    expect(token).toMatchObject({
      accessToken: "AT",
      tokenType: "Bearer",
      expiresAt: clock.now() + 60_000,
    });
    const req = lastRequest();
    const decoded = Buffer.from(
      String(req.headers.authorization).replace(/^Basic /, ""),
      "base64",
    ).toString();
    expect(decoded).toBe("my+app:a%3Ab%2Fc%2Bd%3De%25f%26g");
    expect(req.method).toBe("POST");
    expect(req.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(req.form.get("grant_type")).toBe("client_credentials");
    expect(req.form.get("scope")).toBe("a b");
    expect(req.form.has("client_secret")).toBe(false);
  });

  it("basic_raw sends id:secret as is", async () => {
    await requestClientCredentialsGrant(
      resolved({ tokenUrl: server.url("/token"), clientAuth: "basic_raw", clientSecret: SECRET }),
    );
    const decoded = Buffer.from(
      String(lastRequest().headers.authorization).slice(6),
      "base64",
    ).toString();
    expect(decoded).toBe(`app:${SECRET}`);
  });

  it("body puts the credentials in the form", async () => {
    await requestClientCredentialsGrant(
      resolved({ tokenUrl: server.url("/token"), clientAuth: "body", clientSecret: SECRET }),
    );
    const req = lastRequest();
    expect(req.headers.authorization).toBeUndefined();
    expect(req.form.get("client_id")).toBe("app");
    expect(req.form.get("client_secret")).toBe(SECRET);
  });

  it("query puts the credentials in the URL even for POST, keeping the URL's own query", async () => {
    await requestClientCredentialsGrant(
      resolved({
        tokenUrl: server.url("/token?tenant=t1"),
        clientAuth: "query",
        clientSecret: SECRET,
      }),
    );
    const req = lastRequest();
    expect(req.method).toBe("POST");
    expect(req.url.searchParams.get("tenant")).toBe("t1");
    expect(req.url.searchParams.get("client_id")).toBe("app");
    expect(req.url.searchParams.get("client_secret")).toBe(SECRET);
    expect(req.form.get("grant_type")).toBe("client_credentials");
  });

  it("a public client sends only client_id", async () => {
    await requestClientCredentialsGrant(resolved({ tokenUrl: server.url("/token") }));
    const req = lastRequest();
    expect(req.headers.authorization).toBeUndefined();
    expect(req.form.get("client_id")).toBe("app");
  });
});

describe("request shapes", () => {
  it("GET sends every field in the query string and no body", async () => {
    server.on("/get-token", (req, res) =>
      req.method === "GET"
        ? json(res, 200, { access_token: "G" })
        : json(res, 405, { error: "method" }),
    );
    const config = resolved({
      tokenUrl: server.url("/get-token"),
      tokenMethod: "GET",
      clientAuth: "body",
      clientSecret: "s",
      tokenParams: { audience: "api" },
    });
    const token = await requestClientCredentialsGrant(config);
    const req = lastRequest();
    expect(token.accessToken).toBe("G");
    expect(req.body).toBe("");
    expect(Object.fromEntries(req.url.searchParams)).toEqual({
      grant_type: "client_credentials",
      audience: "api",
      client_id: "app",
      client_secret: "s",
    });
  });

  it("sends tokenParams and tokenHeaders on grants; refreshParams too on refresh, without scope", async () => {
    const config = resolved({
      tokenUrl: server.url("/token"),
      clientSecret: "s",
      scopes: ["x", "y"],
      scopeSeparator: ",",
      tokenParams: { audience: "api" },
      refreshParams: { access_type: "offline" },
      tokenHeaders: { "X-Tenant": "t1" },
    });
    await requestPasswordGrant(config, { username: "ann", password: "p&ss word" });
    let req = lastRequest();
    expect(req.form.get("grant_type")).toBe("password");
    expect(req.form.get("username")).toBe("ann");
    expect(req.form.get("password")).toBe("p&ss word");
    expect(req.form.get("scope")).toBe("x,y");
    expect(req.form.get("audience")).toBe("api");
    expect(req.form.has("access_type")).toBe(false);
    expect(req.headers["x-tenant"]).toBe("t1");
    expect(req.headers.accept).toBe("application/json");

    await refreshAccessToken(config, "RT1");
    req = lastRequest();
    expect(req.form.get("grant_type")).toBe("refresh_token");
    expect(req.form.get("refresh_token")).toBe("RT1");
    expect(req.form.get("access_type")).toBe("offline");
    expect(req.form.get("audience")).toBe("api");
    expect(req.form.has("scope")).toBe(false);
  });
});

describe("tolerant response parsing", () => {
  async function answer(
    respond: Parameters<QuirkServer["on"]>[1],
    extra: Record<string, unknown> = {},
  ) {
    server.on("/t", respond);
    return requestClientCredentialsGrant(
      resolved({ tokenUrl: server.url("/t"), fixedTtlSeconds: 900, ...extra }),
      {
        clock,
      },
    );
  }

  it("reads a form-encoded body with a string expires_in (GitHub style)", async () => {
    const t = await answer((_q, res) =>
      text(
        res,
        200,
        "application/x-www-form-urlencoded",
        "access_token=F1&expires_in=120&refresh_token=R1&scope=a%2Cb",
      ),
    );
    expect(t).toMatchObject({
      accessToken: "F1",
      expiresAt: clock.now() + 120_000,
      refreshToken: "R1",
      scope: "a,b",
    });
  });

  it("reads a text/plain query-string body", async () => {
    const t = await answer((_q, res) =>
      text(res, 200, "text/plain", "access_token=P1&token_type=bearer"),
    );
    expect(t).toMatchObject({
      accessToken: "P1",
      tokenType: "Bearer",
      expiresAt: clock.now() + 900_000,
    });
  });

  it("reads JSON sent as text/plain", async () => {
    const t = await answer((_q, res) =>
      text(res, 200, "text/plain", '{"access_token":"J1","expires_in":"30.5"}'),
    );
    expect(t.expiresAt).toBe(clock.now() + 30_500);
  });

  it("accepts 201, a null expires_in and a missing token_type", async () => {
    const t = await answer((_q, res) => json(res, 201, { access_token: "C1", expires_in: null }));
    expect(t).toMatchObject({
      accessToken: "C1",
      tokenType: "Bearer",
      expiresAt: clock.now() + 900_000,
    });
  });

  it("keeps the whole response", async () => {
    const t = await answer((_q, res) =>
      json(res, 200, { access_token: "K", instance_url: "https://x.example", id: 7 }),
    );
    expect(t.raw).toEqual({ access_token: "K", instance_url: "https://x.example", id: 7 });
  });

  it("maps nested, renamed fields and an absolute expiry", async () => {
    const expiry = new Date(clock.now() + 42_000).toISOString();
    const t = await answer(
      (_q, res) => json(res, 200, { data: { token: "N1", renew: "NR", validUntil: expiry } }),
      {
        responseMap: {
          accessToken: "data.token",
          refreshToken: "data.renew",
          expiresAt: "data.validUntil",
        },
      },
    );
    expect(t).toMatchObject({
      accessToken: "N1",
      refreshToken: "NR",
      expiresAt: clock.now() + 42_000,
    });
    const epoch = await answer(
      (_q, res) => json(res, 200, { tok: "E", exp: Math.floor(clock.now() / 1000) + 60 }),
      {
        responseMap: { accessToken: "tok", expiresAt: "exp" },
      },
    );
    expect(epoch.expiresAt).toBe(clock.now() + 60_000);
  });

  it("treats an error inside a 200 as the error it is", async () => {
    const e = await caught(() =>
      answer((_q, res) =>
        json(res, 200, { error: "invalid_client", error_description: "Bad secret" }),
      ),
    );
    expect(e).toBeInstanceOf(TokenwardenError);
    expect(e).toMatchObject({
      code: "token_endpoint_error",
      oauthError: "invalid_client",
      oauthErrorDescription: "Bad secret",
      status: 200,
    });
  });

  it("a success without an access token is token_response_invalid", async () => {
    const e = await caught(() => answer((_q, res) => json(res, 200, { token_type: "bearer" })));
    expect(e).toMatchObject({ code: "token_response_invalid" });
    expect(e.message).toContain("access_token");
  });

  it("keeps the server's error and description on a 400 (RFC 6749 §5.2)", async () => {
    const e = await caught(() =>
      answer((_q, res) => json(res, 400, { error: "invalid_grant", error_description: "expired" })),
    );
    expect(e).toMatchObject({
      code: "token_endpoint_error",
      status: 400,
      oauthError: "invalid_grant",
    });
    expect(e.message).toContain("invalid_grant (expired)");
  });

  it("reports an HTML error page by status, without quoting it", async () => {
    const e = await caught(() =>
      answer((_q, res) => text(res, 502, "text/html", "<html><h1>Bad gateway</h1></html>")),
    );
    expect(e).toMatchObject({ code: "token_endpoint_error", status: 502 });
    expect(e.message).toContain("HTTP 502 (text/html)");
    expect(e.message).not.toContain("<h1>");
  });

  it("reports a 429 with its Retry-After", async () => {
    const e = await caught(() =>
      answer((_q, res) => json(res, 429, { error: "slow_down" }, { "retry-after": "7" })),
    );
    expect(e).toMatchObject({ status: 429, retryAfterSeconds: 7, oauthError: "slow_down" });
  });

  it("an HTML page with 200 is not a token", async () => {
    const e = await caught(() =>
      answer((_q, res) => text(res, 200, "text/html", "<html>login</html>")),
    );
    expect(e).toMatchObject({ code: "token_response_invalid" });
  });

  it("refuses a body over the size limit", async () => {
    server.on("/big", (_q, res) => json(res, 200, { access_token: "x".repeat(5000) }));
    const e = await caught(() =>
      requestClientCredentialsGrant(resolved({ tokenUrl: server.url("/big") }), {
        maxResponseBytes: 1024,
      }),
    );
    expect(e).toMatchObject({ code: "token_response_invalid" });
  });
});

describe("transport failures", () => {
  it("times out on a server that never answers", async () => {
    server.on("/hang", () => undefined);
    const e = await caught(() =>
      requestClientCredentialsGrant(resolved({ tokenUrl: server.url("/hang"), timeoutMs: 300 })),
    );
    expect(e).toMatchObject({ code: "timeout" });
    expect(e.message).toContain("300 ms");
  });

  it("times out on a server that sends its headers and then stops mid-body", async () => {
    server.on("/stall", (_q, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
      res.write('{"access_token":"');
    });
    const e = await caught(() =>
      requestClientCredentialsGrant(resolved({ tokenUrl: server.url("/stall"), timeoutMs: 300 })),
    );
    expect(e).toMatchObject({ code: "timeout" });
  });

  it("a refused connection is a network error that does not quote the query", async () => {
    const e = await caught(() =>
      requestClientCredentialsGrant(
        resolved({
          tokenUrl: "http://127.0.0.1:1/token",
          clientAuth: "query",
          clientSecret: "hush-hush",
        }),
      ),
    );
    expect(e).toMatchObject({ code: "network_error" });
    expect(e.message).toContain("http://127.0.0.1:1/token");
    expect(JSON.stringify(e)).not.toContain("hush-hush");
    expect(e.message).not.toContain("hush-hush");
  });

  it("verifies TLS by default, trusts a given CA, and can be switched off", async () => {
    tlsServer.on("/token", (_q, res) => json(res, 200, { access_token: "TLS" }));
    const url = tlsServer.url("/token");
    const e = await caught(() => requestClientCredentialsGrant(resolved({ tokenUrl: url })));
    expect(e).toMatchObject({ code: "tls_error" });
    const trusted = await requestClientCredentialsGrant(
      resolved({ tokenUrl: url, tls: { mode: "trust", ca: tlsServer.certificate } }),
    );
    expect(trusted.accessToken).toBe("TLS");
    const off = await requestClientCredentialsGrant(
      resolved({ tokenUrl: url, tls: { mode: "off" } }),
    );
    expect(off.accessToken).toBe("TLS");
  });
});

describe("revocation", () => {
  it("posts the token with its hint and client authentication", async () => {
    server.on("/revoke", (_q, res) => {
      res.writeHead(200);
      res.end();
    });
    await revokeToken(
      resolved({
        tokenUrl: server.url("/token"),
        revocationUrl: server.url("/revoke"),
        clientSecret: "s",
      }),
      "RT9",
      "refresh_token",
    );
    const req = lastRequest();
    expect(req.form.get("token")).toBe("RT9");
    expect(req.form.get("token_type_hint")).toBe("refresh_token");
    expect(req.headers.authorization).toMatch(/^Basic /);
  });

  it("fails with the server's error, and needs a revocation URL", async () => {
    server.on("/revoke", (_q, res) => json(res, 400, { error: "unsupported_token_type" }));
    const config = resolved({
      tokenUrl: server.url("/token"),
      revocationUrl: server.url("/revoke"),
    });
    expect(await caught(() => revokeToken(config, "x", "access_token"))).toMatchObject({
      oauthError: "unsupported_token_type",
    });
    const none = await caught(() =>
      revokeToken(resolved({ tokenUrl: server.url("/token") }), "x", "access_token"),
    );
    expect(none).toMatchObject({ code: "invalid_config", field: "revocationUrl" });
  });
});
