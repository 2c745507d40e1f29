import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  putAcme,
  type Recorder,
  type SecurityService,
  sendJson,
  startRecorder,
  startSecurityService,
  tokenEndpoint,
} from "./harness.js";

/**
 * Proxy confinement (PRODUCT.md "Security rules" 4). The proxy adds the access token
 * to what it forwards, so an attacker with a client key tries to make it forward
 * elsewhere: another host, or a path outside `apiBaseUrl` on the same host (another
 * tenant's API, an admin endpoint). No spelling may get there.
 */
let tw: SecurityService;
let api: Recorder;
let attacker: Recorder;

beforeAll(async () => {
  tw = await startSecurityService();
  api = await startRecorder();
  attacker = await startRecorder();
  tokenEndpoint(api);
  api.on("/tenant/api/*", (req, res) => sendJson(res, 200, { target: req.target }));
  api.on("/tenant/secret", (_req, res) => sendJson(res, 200, { leaked: true }));
  await putAcme(tw, api, "/tenant/api", {
    allowedApiOrigins: [attacker.origin.replace("127.0.0.1", "localhost")],
  });
});
afterAll(async () => {
  await tw.close();
  await api.close();
  await attacker.close();
});

/** Every request the API server got outside the token endpoint must be under the base path. */
function apiRequestsOutsideBase(): string[] {
  return api.seen
    .map((r) => r.target)
    .filter((t) => t !== "/token" && !t.startsWith("/tenant/api/"));
}

const host = () => `127.0.0.1:${attacker.port}`;

/** After `/v1/proxy/c1/`: ways out of `/tenant/api/`, or to another host. */
const ESCAPES = () => [
  "../secret",
  "../../tenant/secret",
  "x/../../secret",
  "..%2Fsecret",
  "..%2fsecret",
  "%2e%2e/secret",
  "%2E%2E/secret",
  "%2e./secret",
  ".%2e/secret",
  "%2E./%2e%2E/secret",
  "%252e%252e/secret",
  "%25252e%25252e/secret",
  "%2525252e%2525252e/secret",
  "..%252Fsecret",
  "%2e%2e%2fsecret",
  "..\\secret",
  "..%5csecret",
  "..%5Csecret",
  "%5c..%5csecret",
  "..%255csecret",
  "a\\..\\..\\secret",
  "..;/secret",
  "..;x=1/secret",
  ".;/x",
  "./x",
  "x/.",
  "x/..",
  ".%00./secret",
  "%00/x",
  "a%2Fb",
  "a%2fb",
  `/${host()}/x`,
  `//${host()}/x`,
  `%2F${host()}/x`,
  `%2F%2F${host()}/x`,
  `\\\\${host()}\\x`,
  `%5C%5C${host()}/x`,
  `http://${host()}/x`,
  `https://${host()}/x`,
  `HTTP://${host()}/x`,
  `http:%2F%2F${host()}/x`,
  `http:\\\\${host()}/x`,
  `http:${host()}/x`,
  `http://user@${host()}/x`,
];

describe("the proxy stays under apiBaseUrl", () => {
  it("refuses every way out with 400 invalid_request, and forwards nothing", async () => {
    const tokens = api.seen.filter((r) => r.target === "/token").length;
    for (const way of ESCAPES()) {
      const res = await tw.raw(`/v1/proxy/c1/${way}`);
      expect(res.status, `${way} answered ${res.status}: ${res.text}`).toBe(400);
      expect(res.json.error.code, way).toBe("invalid_request");
    }
    expect(attacker.seen).toEqual([]);
    expect(apiRequestsOutsideBase()).toEqual([]);
    // Refused before a token was read: not one token request for all of them.
    expect(api.seen.filter((r) => r.target === "/token").length).toBe(tokens);
  });

  it("refuses them with every method, and through the absolute-form request target", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]) {
      const res = await tw.raw("/v1/proxy/c1/%2e%2e/secret", { method });
      expect(res.status, method).toBe(400);
    }
    const absolute = await tw.raw("http://127.0.0.1/v1/proxy/c1/..%2Fsecret");
    expect(absolute.status).toBe(400);
    const spelled = await tw.raw("/v1/pro%78y/c1/%2e%2e/secret");
    expect(spelled.status).toBe(400);
    expect(attacker.seen).toEqual([]);
    expect(apiRequestsOutsideBase()).toEqual([]);
  });

  it("forwards a path under it exactly as sent, query included", async () => {
    for (const [path, expected] of [
      ["orders/1", "/tenant/api/orders/1"],
      ["orders/1?page=2&redirect=%2F..%2Fx", "/tenant/api/orders/1?page=2&redirect=%2F..%2Fx"],
      ["a%20b/c", "/tenant/api/a%20b/c"],
      ["what%3F/x", "/tenant/api/what%3F/x"],
      ["x..y/.well", "/tenant/api/x..y/.well"],
      ["caf%C3%A9", "/tenant/api/caf%C3%A9"],
      ["100%25", "/tenant/api/100%25"],
      ["", "/tenant/api/"],
    ] as const) {
      const res = await tw.raw(`/v1/proxy/c1/${path}`);
      expect(res.status, path).toBe(200);
      expect(res.json.target, path).toBe(expected);
    }
    expect(attacker.seen).toEqual([]);
  });
});

describe("the library's fetch", () => {
  it("takes an absolute URL only on apiBaseUrl's origin or one in allowedApiOrigins", async () => {
    const lib = tw.service.tw;
    const good = await lib.fetch("c1", `${api.origin}/tenant/api/thing`);
    expect(good.status).toBe(200);
    // Listed as localhost: the same server, but another origin than 127.0.0.1.
    const allowed = await lib.fetch("c1", `http://localhost:${attacker.port}/listed`);
    expect(allowed.status).toBe(404); // reached, and answered by that server
    expect(attacker.seen.map((r) => r.target)).toEqual(["/listed"]);
    for (const url of [
      `${attacker.origin}/x`,
      `http://127.0.0.1:${attacker.port}@localhost:1/x`,
      `http://user:pw@${api.origin.slice("http://".length)}/tenant/api/x`,
      `//${host()}/x`,
      `\\\\${host()}\\x`,
      `/\\${host()}/x`,
      `file:///etc/passwd`,
      `ftp://${host()}/x`,
      "../secret",
      "/%2e%2e/secret",
      "%2E%2E%2Fsecret",
      "/a%5c..%5c..%5csecret",
    ]) {
      await expect(lib.fetch("c1", url), url).rejects.toMatchObject({ code: "invalid_request" });
    }
    expect(attacker.seen.map((r) => r.target)).toEqual(["/listed"]);
    expect(apiRequestsOutsideBase()).toEqual([]);
  });

  it("accepts only origins in allowedApiOrigins", async () => {
    for (const origin of [
      "https://api.example.com/v1",
      "https://u@api.example.com",
      "not a url",
      "ftp://x.example",
    ]) {
      const res = await tw.call("PUT", "/v1/integrations/origins", {
        body: {
          grantType: "client_credentials",
          tokenUrl: `${api.origin}/token`,
          clientId: "app",
          allowedApiOrigins: [origin],
        },
      });
      expect(res.status, origin).toBe(400);
      expect(res.json.error.field).toBe("allowedApiOrigins.0");
    }
    const ok = await tw.call("PUT", "/v1/integrations/origins", {
      body: {
        grantType: "client_credentials",
        tokenUrl: `${api.origin}/token`,
        clientId: "app",
        allowedApiOrigins: ["https://API.example.com:443/"],
      },
    });
    expect(ok.status).toBe(201);
    expect(ok.json.allowedApiOrigins).toEqual(["https://api.example.com"]);
  });
});
