import type { ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  isHttpUrl,
  ManualClock,
  parseConnection,
  parseIntegration,
  type ResolvedIntegration,
  resolveIntegration,
} from "../../src/core/index.js";
import {
  buildAuthorizationRequest,
  exchangeAuthorizationCode,
  refreshAccessToken,
} from "../../src/oauth/index.js";
import {
  applyPreset,
  PRESETS,
  type Preset,
  parseCatalogue,
  QUIRK_KINDS,
  type QuirkKind,
} from "../../src/presets/catalogue.js";
import {
  json,
  type QuirkServer,
  type RecordedRequest,
  startQuirkServer,
} from "../fixtures/quirk-server.js";
import { caught } from "../helpers.js";

/**
 * The preset catalogue: every entry valid and resolvable, and each quirk an entry
 * declares exercised against a quirk-fixture server behaving that way, through that
 * entry's own settings (only the URLs are pointed at the fixture: own fields win).
 */
const clock = new ManualClock(1_700_000_000_000);
let server: QuirkServer;
beforeAll(async () => {
  server = await startQuirkServer();
});
afterAll(async () => {
  await server.close();
});

function sampleParameters(preset: Preset): Record<string, string> {
  const names = (preset.fields.parameters as string[] | undefined) ?? [];
  return Object.fromEntries(names.map((n) => [n, `sample${n.length}`]));
}

function resolvePreset(preset: Preset, own: Record<string, unknown> = {}): ResolvedIntegration {
  const integration = parseIntegration(
    applyPreset({
      key: "p",
      preset: preset.name,
      clientId: "app id",
      clientSecret: "s:e/c",
      ...own,
    }),
  );
  return resolveIntegration(
    integration,
    parseConnection({ id: "c", integration: "p", parameters: sampleParameters(preset) }),
  );
}

/** The preset pointed at the fixture: `path` serves its token endpoint. */
function atFixture(preset: Preset, path: string, own: Record<string, unknown> = {}) {
  return resolvePreset(preset, {
    discoveryUrl: null,
    authorizationUrl: server.url("/authorize"),
    tokenUrl: server.url(path),
    revocationUrl: null,
    introspectionUrl: null,
    ...own,
  });
}

const code = { code: "the-code", redirectUri: "http://127.0.0.1/cb" };
let route = 0;
/** A fresh path per test, so handlers never cross. */
function serve(handler: (req: RecordedRequest, res: ServerResponse) => void): string {
  const path = `/t${++route}`;
  server.on(path, handler);
  return path;
}
const requestsTo = (path: string) => server.requests.filter((r) => r.url.pathname === path);

describe("the catalogue", () => {
  it("holds at least 40 providers, each schema-valid and resolvable with sample parameters", () => {
    expect(PRESETS.length).toBeGreaterThanOrEqual(40);
    for (const preset of PRESETS) {
      const resolved = resolvePreset(preset);
      for (const field of ["tokenUrl", "authorizationUrl", "discoveryUrl"] as const) {
        const url = resolved[field];
        if (url !== undefined) {
          expect(isHttpUrl(url), `${preset.name}.${field}`).toBe(true);
          expect(new URL(url).protocol, `${preset.name}.${field}`).toBe("https:");
        }
      }
      expect(resolved.tokenUrl ?? resolved.discoveryUrl, preset.name).toBeDefined();
      expect(preset.notes.length).toBeGreaterThan(0);
    }
  });

  it("covers the providers people ask for first", () => {
    const names = PRESETS.map((p) => p.name);
    for (const name of [
      "google",
      "microsoft",
      "github",
      "salesforce",
      "slack",
      "hubspot",
      "atlassian",
      "zoom",
      "dropbox",
      "box",
      "xero",
      "quickbooks",
      "shopify",
      "notion",
      "linear",
      "asana",
      "okta",
      "auth0",
      "zendesk",
      "intercom",
      "stripe-connect",
      "linkedin",
      "spotify",
      "docusign",
    ])
      expect(names).toContain(name);
  });

  it("refuses an entry carrying credentials, a duplicate, or an unknown quirk", () => {
    const base = { name: "x", displayName: "X", docsUrl: "https://x.example", notes: ["n"] };
    expect(() => parseCatalogue([{ ...base, clientSecret: "s" }])).toThrow(/clientSecret/);
    expect(() => parseCatalogue([base, base])).toThrow(/twice/);
    expect(() => parseCatalogue([{ ...base, quirks: ["magic"] }])).toThrow(/quirks/);
  });

  it("own fields win, objects merge key by key, null drops a preset field, unknown names are refused", () => {
    const google = PRESETS.find((p) => p.name === "google") as Preset;
    const r = resolvePreset(google, {
      scopes: ["email"],
      authorizationParams: { login_hint: "ann" },
      discoveryUrl: null,
    });
    expect(r.scopes).toEqual(["email"]);
    expect(r.authorizationParams).toEqual({
      access_type: "offline",
      prompt: "consent",
      login_hint: "ann",
    });
    expect(r.discoveryUrl).toBeUndefined();
    expect(r.preset).toBe("google");
    expect(() => applyPreset({ key: "k", preset: "no-such" })).toThrow(/not in the catalogue/);
  });
});

/** One exercise per quirk kind: the record type makes a new kind without one a type error. */
const EXERCISES: Record<QuirkKind, (preset: Preset) => Promise<void>> = {
  async scope_separator(preset) {
    const config = atFixture(preset, "/unused", { scopes: ["one", "two"] });
    const { url } = buildAuthorizationRequest(config, { redirectUri: code.redirectUri });
    const separator = preset.fields.scopeSeparator as string;
    expect(separator).not.toBe(" ");
    expect(url.searchParams.get("scope")).toBe(`one${separator}two`);
  },
  async offline_access(preset) {
    // The fixture hands a refresh token only to an authorization that asked for one the
    // provider's way: it reads the parameters the authorization request carried.
    const config = atFixture(preset, "/unused");
    const { url } = buildAuthorizationRequest(config, { redirectUri: code.redirectUri });
    const wanted = preset.fields.authorizationParams as Record<string, string>;
    const offline = Object.entries(wanted).every(([k, v]) => url.searchParams.get(k) === v);
    const path = serve((_req, res) =>
      json(res, 200, {
        access_token: "AT",
        expires_in: 3600,
        ...(offline ? { refresh_token: "RT" } : {}),
      }),
    );
    const token = await exchangeAuthorizationCode({ ...config, tokenUrl: server.url(path) }, code, {
      clock,
    });
    expect(token.refreshToken).toBe("RT");
  },
  async no_expires_in(preset) {
    const path = serve((_req, res) => json(res, 200, { access_token: "AT", token_type: "bearer" }));
    const token = await exchangeAuthorizationCode(atFixture(preset, path), code, { clock });
    expect(preset.fields.session).toBe("none");
    expect(token.expiresAt).toBeNull();
  },
  async form_encoded_response(preset) {
    const path = serve((_req, res) => {
      res.writeHead(200, { "content-type": "application/x-www-form-urlencoded" });
      res.end("access_token=gho_AT&scope=repo%2Cuser&token_type=bearer");
    });
    const token = await exchangeAuthorizationCode(atFixture(preset, path), code, { clock });
    expect(token).toMatchObject({ accessToken: "gho_AT", tokenType: "Bearer", scope: "repo,user" });
  },
  async error_in_200(preset) {
    const path = serve((_req, res) => json(res, 200, { ok: false, error: "invalid_code" }));
    const e = await caught(() =>
      exchangeAuthorizationCode(atFixture(preset, path), code, { clock }),
    );
    expect(e.code).toBe("token_endpoint_error");
    expect(e.oauthError).toBe("invalid_code");
  },
  async client_auth(preset) {
    // The fixture accepts only the method the preset declares, as the provider does.
    const method = preset.fields.clientAuth as string;
    const accepts = (req: RecordedRequest) => {
      const basic = req.headers.authorization?.startsWith("Basic ") === true;
      const inBody = req.form.get("client_secret") !== null;
      return method === "body" ? inBody && !basic : basic && !inBody;
    };
    const path = serve((req, res) =>
      accepts(req)
        ? json(res, 200, { access_token: "AT", expires_in: 60 })
        : json(res, 401, { error: "invalid_client" }),
    );
    const token = await exchangeAuthorizationCode(atFixture(preset, path), code, { clock });
    expect(token.accessToken).toBe("AT");
    const other = method === "body" ? "basic" : "body";
    const e = await caught(() =>
      exchangeAuthorizationCode(atFixture(preset, path, { clientAuth: other }), code, { clock }),
    );
    expect(e.oauthError).toBe("invalid_client");
  },
  async refresh_token_rotation(preset) {
    let alive = "RT1";
    let n = 1;
    const path = serve((req, res) => {
      if (req.form.get("refresh_token") !== alive)
        return json(res, 400, { error: "invalid_grant" });
      alive = `RT${++n}`;
      json(res, 200, { access_token: `AT${n}`, expires_in: 3600, refresh_token: alive });
    });
    const config = atFixture(preset, path);
    const first = await refreshAccessToken(config, "RT1", { clock });
    expect(first.refreshToken).toBe("RT2");
    const second = await refreshAccessToken(config, first.refreshToken as string, { clock });
    expect(second.refreshToken).toBe("RT3");
    const e = await caught(() => refreshAccessToken(config, "RT1", { clock }));
    expect(e.oauthError).toBe("invalid_grant");
  },
  async expiry_from_introspection(preset) {
    const exp = Math.floor(clock.now() / 1000) + 7200;
    const token = serve((_req, res) =>
      json(res, 200, { access_token: "AT", token_type: "Bearer" }),
    );
    const introspect = serve((req, res) =>
      json(res, 200, req.form.get("token") === "AT" ? { active: true, exp } : { active: false }),
    );
    const config = atFixture(preset, token, { introspectionUrl: server.url(introspect) });
    const got = await exchangeAuthorizationCode(config, code, { clock });
    expect(got.expiresAt).toBe(exp * 1000);
    expect(requestsTo(introspect)).toHaveLength(1);
  },
};

describe("each quirk a preset declares works against a server behaving that way", () => {
  for (const kind of QUIRK_KINDS) {
    const users = PRESETS.filter((p) => p.quirks.includes(kind));
    it(`${kind} (${users.map((p) => p.name).join(", ")})`, async () => {
      expect(users.length).toBeGreaterThan(0);
      for (const preset of users) await EXERCISES[kind](preset);
    });
  }
});
