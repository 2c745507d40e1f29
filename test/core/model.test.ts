import { describe, expect, it } from "vitest";
import {
  type IntegrationInput,
  IntegrationResolver,
  isTokenwardenError,
  parseConnection,
  parseIntegration,
  resolveIntegration,
  type TokenwardenError,
} from "../../src/core/index.js";
import { fillTokenTemplate } from "../../src/core/template.js";

function rejection(fn: () => unknown): TokenwardenError {
  try {
    fn();
  } catch (error) {
    if (isTokenwardenError(error)) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

const base: IntegrationInput = {
  key: "acme",
  grantType: "client_credentials",
  tokenUrl: "https://auth.acme.example/oauth/token",
  clientId: "app",
};

describe("integration schema", () => {
  it("applies the documented defaults", () => {
    const i = parseIntegration(base);
    expect(i).toMatchObject({
      tokenMethod: "POST",
      clientAuth: "basic",
      scopes: [],
      scopeSeparator: " ",
      pkce: true,
      session: "auto",
      fixedTtlSeconds: 3600,
      refreshAheadSeconds: 60,
      retryOn: [401, 403],
      timeoutMs: 10_000,
      tls: { mode: "verify" },
      tokenPlacement: { in: "header", name: "Authorization", template: "Bearer {token}" },
      requestParams: { headers: {}, query: {} },
    });
  });

  it("names the field and the reason", () => {
    const e = rejection(() => parseIntegration({ ...base, tokenUrl: "/oauth/token" }));
    expect(e.code).toBe("invalid_config");
    expect(e.field).toBe("tokenUrl");
    expect(e.message).toBe("tokenUrl: must be an absolute http(s) URL");
  });

  it("reports every problem, including unknown and missing fields", () => {
    const e = rejection(() =>
      parseIntegration({ key: "bad key!", grantType: "magic", tokenUrl: "ftp://x", colour: "red" }),
    );
    const fields = (e.issues ?? []).map((i) => `${i.field}: ${i.message}`);
    expect(fields).toContain("colour: unknown field");
    expect(fields).toContain("tokenUrl: must be an absolute http(s) URL");
    expect(fields.some((f) => f.startsWith("key: must start with a letter or digit"))).toBe(true);
    expect(fields.some((f) => f.startsWith("grantType: must be one of authorization_code"))).toBe(
      true,
    );
  });

  it("says a required field is required", () => {
    const e = rejection(() => parseIntegration({ key: "acme", grantType: "password" }));
    expect(e.message).toBe("tokenUrl: is required (or set discoveryUrl or mcpServerUrl)");
  });

  it("requires an authorization URL for the authorization code grant", () => {
    const e = rejection(() => parseIntegration({ ...base, grantType: "authorization_code" }));
    expect(e.field).toBe("authorizationUrl");
  });

  it("rejects a placeholder that is not a declared parameter, naming where it is used", () => {
    const e = rejection(() =>
      parseIntegration({
        ...base,
        tokenUrl: "https://{server}/token",
        tokenParams: { audience: "{aud}" },
      }),
    );
    expect(e.issues?.map((i) => i.field)).toEqual(["tokenUrl", "tokenParams.audience"]);
    expect(e.message).toContain("uses {server}, which is not in parameters");
  });

  it("accepts declared placeholders in URLs and reserves {token}", () => {
    const ok = parseIntegration({
      ...base,
      parameters: ["server"],
      tokenUrl: "https://{server}/token",
    });
    expect(ok.parameters).toEqual(["server"]);
    const e = rejection(() => parseIntegration({ ...base, parameters: ["token"] }));
    expect(e.field).toBe("parameters.0");
  });

  it("requires {token} in the placement template and defaults query placement sensibly", () => {
    expect(
      rejection(() => parseIntegration({ ...base, tokenPlacement: { template: "Bearer x" } }))
        .field,
    ).toBe("tokenPlacement.template");
    expect(parseIntegration({ ...base, tokenPlacement: { in: "query" } }).tokenPlacement).toEqual({
      in: "query",
      name: "access_token",
      template: "{token}",
    });
  });

  it("places an access token as it is, whatever printable characters it holds", () => {
    const token = "a$&b$$c$'d$`e$1";
    expect(fillTokenTemplate("Bearer {token}", token)).toBe(`Bearer ${token}`);
    expect(fillTokenTemplate("{token}|{token}", token)).toBe(`${token}|${token}`);
  });

  it("checks TLS settings", () => {
    expect(rejection(() => parseIntegration({ ...base, tls: { mode: "trust" } })).field).toBe(
      "tls.ca",
    );
    expect(
      rejection(() => parseIntegration({ ...base, tls: { mode: "verify", ca: "nope" } })).field,
    ).toBe("tls.ca");
  });

  it("accepts scopes as a string and rejects a bad regular expression", () => {
    expect(parseIntegration({ ...base, scopes: "a b,c" }).scopes).toEqual(["a", "b", "c"]);
    expect(rejection(() => parseIntegration({ ...base, expiredBodyPattern: "(" })).field).toBe(
      "expiredBodyPattern",
    );
  });
});

describe("connections and templating", () => {
  const integration = parseIntegration({
    ...base,
    parameters: ["server", "tenant"],
    tokenUrl: "https://{server}.acme.example/{tenant}/token",
    tokenParams: { audience: "api://{tenant}", literal: "{{not a param}}" },
    tokenPlacement: { template: "Token {token} for {tenant}" },
    expiredBodyPattern: "\\d{3} {expired}",
  });

  it("fills every string field from the connection's parameters", () => {
    const resolved = resolveIntegration(
      integration,
      parseConnection({
        id: "c1",
        integration: "acme",
        parameters: { server: "eu", tenant: "t1" },
      }),
    );
    expect(resolved.tokenUrl).toBe("https://eu.acme.example/t1/token");
    expect(resolved.tokenParams).toEqual({ audience: "api://t1", literal: "{not a param}" });
    expect(resolved.tokenPlacement.template).toBe("Token {token} for t1");
    // A regular expression is not a template.
    expect(resolved.expiredBodyPattern).toBe("\\d{3} {expired}");
  });

  it("rejects a missing or unknown parameter value, never sending it literally", () => {
    const missing = rejection(() =>
      resolveIntegration(
        integration,
        parseConnection({ id: "c1", integration: "acme", parameters: { server: "x" } }),
      ),
    );
    expect(missing.code).toBe("invalid_config");
    expect(missing.message).toBe("parameters.tenant: is required by integration acme");
    const unknown = rejection(() =>
      resolveIntegration(
        integration,
        parseConnection({
          id: "c1",
          integration: "acme",
          parameters: { server: "x", tenant: "y", zone: "z" },
        }),
      ),
    );
    expect(unknown.field).toBe("parameters.zone");
  });

  it("rejects a value that does not fit the URL part it fills, naming the parameter", () => {
    const e = rejection(() =>
      resolveIntegration(
        integration,
        parseConnection({
          id: "c1",
          integration: "acme",
          parameters: { server: "bad host", tenant: "t" },
        }),
      ),
    );
    // A host value is one host label (PRODUCT.md "Security rules" 5).
    expect(e.field).toBe("parameters.server");
  });

  it("lets a connection override the client and requires what the grant needs", () => {
    const pw = parseIntegration({ ...base, grantType: "password" });
    const resolved = resolveIntegration(
      pw,
      parseConnection({
        id: "c",
        integration: "acme",
        clientId: "other",
        clientSecret: "s",
        username: "u",
        password: "p",
      }),
    );
    expect(resolved.clientId).toBe("other");
    expect(resolved.clientSecret).toBe("s");
    const e = rejection(() =>
      resolveIntegration(pw, parseConnection({ id: "c", integration: "acme", username: "u" })),
    );
    expect(e.message).toBe("password: is required for the password grant");
  });

  it("resolves once per integration the connections that add nothing, checking each", () => {
    const resolver = new IntegrationResolver();
    const pw = parseIntegration({ ...base, grantType: "password" });
    const user = (id: string, extra: Record<string, unknown> = {}) =>
      parseConnection({ id, integration: "acme", username: "u", password: "p", ...extra });
    const first = resolver.resolve(pw, user("a"));
    expect(resolver.resolve(pw, user("b"))).toBe(first);
    expect(first).toEqual(resolveIntegration(pw, user("a")));
    // A connection of its own client, or of parameters, is resolved for itself.
    expect(resolver.resolve(pw, user("c", { clientId: "other" })).clientId).toBe("other");
    expect(resolver.resolve(pw, user("d")).clientId).toBe("app");
    const filled = resolver.resolve(
      integration,
      parseConnection({ id: "e", integration: "acme", parameters: { server: "eu", tenant: "t1" } }),
    );
    expect(filled.tokenUrl).toBe("https://eu.acme.example/t1/token");
    // Each connection is still checked against the integration.
    const e = rejection(() =>
      resolver.resolve(pw, parseConnection({ id: "f", integration: "acme", username: "u" })),
    );
    expect(e.message).toBe("password: is required for the password grant");
    // Another read of the integration (a change) is resolved again.
    const changed = parseIntegration({ ...base, grantType: "password", clientId: "new" });
    expect(resolver.resolve(changed, user("g")).clientId).toBe("new");
  });

  it("validates the connection id", () => {
    expect(rejection(() => parseConnection({ id: "-x", integration: "acme" })).field).toBe("id");
  });
});
