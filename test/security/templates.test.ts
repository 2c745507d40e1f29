import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Recorder,
  type SecurityService,
  sendJson,
  startRecorder,
  startSecurityService,
} from "./harness.js";

/**
 * Template values are data, not syntax (PRODUCT.md "Security rules" 5). Whoever sets
 * a connection's parameters tries values that would move the token request, which
 * carries the client's credentials, to another host, path or parameter, or add a
 * header; and a token endpoint tries tokens that would add one.
 */
let tw: SecurityService;
let server: Recorder;
let attacker: Recorder;
const SECRET = "client-secret-value";

beforeAll(async () => {
  tw = await startSecurityService();
  server = await startRecorder();
  attacker = await startRecorder();
  let issued = 0;
  server.on("/t/*", (_req, res) => {
    issued++;
    sendJson(res, 200, {
      access_token: `access-${issued}`,
      token_type: "Bearer",
      expires_in: 3600,
    });
  });
  const put = await tw.call("PUT", "/v1/integrations/tmpl", {
    body: {
      grantType: "client_credentials",
      parameters: ["tenant", "aud"],
      tokenUrl: `${server.origin}/t/{tenant}/token?aud={aud}`,
      apiBaseUrl: `${server.origin}/api/{tenant}`,
      tokenHeaders: { "X-Tenant": "{tenant}" },
      clientId: "app",
      clientSecret: SECRET,
    },
  });
  expect(put.status).toBe(201);
});
afterAll(async () => {
  await tw.close();
  await server.close();
  await attacker.close();
});

let n = 0;
async function connect(parameters: Record<string, string>, integration = "tmpl") {
  const id = `c${++n}`;
  const res = await tw.call("PUT", `/v1/connections/${id}`, {
    body: { integration, parameters },
  });
  return { id, res };
}

describe("a value in a URL", () => {
  it("lands percent-encoded in its path segment and its query parameter, on the same host", async () => {
    const attackerHost = `127.0.0.1:${attacker.port}`;
    const tenants = [
      "evil.com#",
      `x@${attackerHost}`,
      `${attackerHost}/`,
      `//${attackerHost}/x`,
      "../../admin",
      "..%2F..%2Fadmin",
      "a/b",
      "a?x=1",
      "a#b",
      "a&client_id=z",
      "a\\b",
      "%00",
      "é ü",
      "...",
    ];
    for (const tenant of tenants) {
      const aud = `${tenant}&client_secret=stolen&grant_type=password`;
      const { id, res } = await connect({ tenant, aud });
      expect(res.status, tenant).toBe(201);
      const before = server.seen.length;
      const token = await tw.call("GET", `/v1/connections/${id}/token`);
      expect(token.status, tenant).toBe(200);
      const request = server.seen.slice(before).find((r) => r.target.startsWith("/t/"));
      expect(request, tenant).toBeDefined();
      const url = new URL(request?.target ?? "", server.origin);
      expect(url.pathname, tenant).toBe(`/t/${encodeURIComponent(tenant)}/token`);
      expect([...url.searchParams.keys()], tenant).toEqual(["aud"]);
      expect(url.searchParams.get("aud"), tenant).toBe(aud);
      expect(new URLSearchParams(request?.body).get("grant_type")).toBe("client_credentials");
    }
    expect(attacker.seen).toEqual([]);
  });

  it("is refused, naming the parameter, where it would make a dot segment or an empty one", async () => {
    for (const tenant of ["..", ".", "%2e%2e", "%2E.", ".%2e", "%2e", ""]) {
      const { res } = await connect({ tenant, aud: "x" });
      expect(res.status, tenant).toBe(400);
      expect(res.json.error).toMatchObject({ code: "invalid_config", field: "parameters.tenant" });
    }
  });

  it("must be one host label in the host", async () => {
    const put = await tw.call("PUT", "/v1/integrations/hosty", {
      body: {
        grantType: "client_credentials",
        parameters: ["sub", "port"],
        tokenUrl: "https://{sub}.auth.example.com:{port}/token",
        clientId: "app",
        clientSecret: SECRET,
      },
    });
    expect(put.status).toBe(201);
    for (const sub of [
      "evil.com",
      "evil.com#",
      "a.b",
      "-a",
      "a-",
      "a_b",
      "x".repeat(64),
      `127.0.0.1:${attacker.port}`,
      "x@evil.com",
      "evil.com/",
      "evil.com\\",
      "evil%2ecom",
      "[::1]",
      "",
      "a b",
      "é",
    ]) {
      const { res } = await connect({ sub, port: "443" }, "hosty");
      expect(res.status, sub).toBe(400);
      expect(res.json.error).toMatchObject({ code: "invalid_config", field: "parameters.sub" });
    }
    for (const port of ["443/evil", "1@evil.com", "", "x"]) {
      const { res } = await connect({ sub: "eu", port }, "hosty");
      expect(res.json.error.field, port).toBe("parameters.port");
    }
    const good = await connect({ sub: "eu-1", port: "8443" }, "hosty");
    expect(good.res.status).toBe(201);
  });

  it("may not be placed in credentials, fragment or scheme", async () => {
    for (const tokenUrl of [
      "https://{u}@auth.example.com/token",
      "https://{u}:{p}@auth.example.com/token",
      "https://auth.example.com/token#{f}",
      "{s}://auth.example.com/token",
    ]) {
      const res = await tw.call("PUT", "/v1/integrations/placed", {
        body: {
          grantType: "client_credentials",
          parameters: ["u", "p", "f", "s"],
          tokenUrl,
          clientId: "app",
        },
      });
      expect(res.status, tokenUrl).toBe(400);
      expect(res.json.error.field, tokenUrl).toBe("tokenUrl");
    }
  });
});

describe("control characters", () => {
  it("are refused in parameter values, naming the parameter", async () => {
    for (const tenant of [
      "a\r\nX-Evil: 1",
      "a\nb",
      "a\rb",
      "a\u0000b",
      "a\tb",
      "a\u007fb",
      "a\u0085b",
    ]) {
      const { res } = await connect({ tenant, aud: "x" });
      expect(res.status, JSON.stringify(tenant)).toBe(400);
      expect(res.json.error).toMatchObject({ code: "invalid_config", field: "parameters.tenant" });
    }
    const { res } = await connect({ tenant: "ok", aud: "a\r\nb" });
    expect(res.json.error.field).toBe("parameters.aud");
  });

  it("are refused in header names and values of an integration, naming the field", async () => {
    const base = {
      grantType: "client_credentials",
      tokenUrl: `${server.origin}/t/x/token`,
      clientId: "app",
    };
    for (const [patch, field] of [
      [{ tokenHeaders: { "X-A": "b\r\nX-Evil: 1" } }, "tokenHeaders.X-A"],
      [{ tokenHeaders: { "X-A": "b\nc" } }, "tokenHeaders.X-A"],
      [{ tokenHeaders: { "X-A\r\nX-Evil": "b" } }, "tokenHeaders"],
      [{ tokenHeaders: { "X A": "b" } }, "tokenHeaders"],
      [{ requestParams: { headers: { "X-B": "c\r\nd" } } }, "requestParams.headers.X-B"],
      [{ tokenPlacement: { template: "Bearer {token}\r\nX-Evil: 1" } }, "tokenPlacement.template"],
      [{ tokenPlacement: { name: "Authorization\r\nX-Evil" } }, "tokenPlacement.name"],
    ] as const) {
      const res = await tw.call("PUT", "/v1/integrations/headers", { body: { ...base, ...patch } });
      expect(res.status, JSON.stringify(patch)).toBe(400);
      expect(res.json.error.code).toBe("invalid_config");
      expect(String(res.json.error.field), JSON.stringify(patch)).toContain(field);
    }
  });

  it("in a token response make it token_response_invalid, never a header", async () => {
    const answers: Record<string, Record<string, unknown>> = {
      access: { access_token: "abc\r\nX-Injected: 1", token_type: "Bearer", expires_in: 60 },
      lf: { access_token: "abc\ndef", token_type: "Bearer", expires_in: 60 },
      refresh: {
        access_token: "abc",
        refresh_token: "r\r\n",
        token_type: "Bearer",
        expires_in: 60,
      },
      type: { access_token: "abc", token_type: "Bearer\r\nX-Injected: 1", expires_in: 60 },
    };
    for (const [name, body] of Object.entries(answers)) {
      server.on(`/bad/${name}`, (_req, res) => sendJson(res, 200, body));
      const put = await tw.call("PUT", `/v1/integrations/bad-${name}`, {
        body: {
          grantType: "client_credentials",
          tokenUrl: `${server.origin}/bad/${name}`,
          clientId: "app",
          apiBaseUrl: `${server.origin}/api`,
        },
      });
      expect(put.status).toBe(201);
      const { id } = await connect({}, `bad-${name}`);
      const token = await tw.call("GET", `/v1/connections/${id}/token`);
      expect(token.status, name).toBe(502);
      expect(token.json.error.code, name).toBe("token_response_invalid");
      expect(token.text).not.toContain("X-Injected");
    }
  });
});
