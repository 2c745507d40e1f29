import { existsSync } from "node:fs";
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Recorder,
  type SecurityService,
  sendJson,
  startRecorder,
  startSecurityService,
} from "./harness.js";

/**
 * Hooks (PRODUCT.md "Security rules" 6). An API key holder tries to make the service
 * run code of their choosing (a module hook runs in the process, with the client
 * secret as input) or post the client secret to a host of their choosing.
 */
let root: string;
let hooksDir: string;
let marker: string;
let evil: string;
let api: Recorder;
let withDir: SecurityService;
let withoutDir: SecurityService;

beforeAll(async () => {
  // Under the project (as the other hook tests): the test runner's module loader
  // imports from there.
  await mkdir(resolve("test/.tmp"), { recursive: true });
  root = await realpath(await mkdtemp(join(resolve("test/.tmp"), "security-hooks-")));
  hooksDir = join(root, "hooks");
  await mkdir(join(hooksDir, "sub"), { recursive: true });
  await mkdir(join(root, "outside"));
  marker = join(root, "ran-outside");
  evil = join(root, "outside", "evil.mjs");
  // Importing it is enough to show that it ran.
  await writeFile(
    evil,
    `import { writeFileSync } from "node:fs";
     writeFileSync(${JSON.stringify(marker)}, "ran");
     export default () => ({ access_token: "evil", expires_in: 60 });`,
  );
  await writeFile(
    join(hooksDir, "good.mjs"),
    `export default (input) => ({ access_token: "hooked-" + input.clientId, expires_in: 60 });`,
  );
  await symlink(evil, join(hooksDir, "link.mjs"));
  await symlink(join(root, "outside"), join(hooksDir, "sub", "up"));
  api = await startRecorder();
  api.on("/hook", (_req, res) =>
    sendJson(res, 200, { access_token: "from-url-hook", expires_in: 60 }),
  );
  withDir = await startSecurityService({ hooksDir });
  withoutDir = await startSecurityService();
});
afterAll(async () => {
  await withDir.close();
  await withoutDir.close();
  await api.close();
  await rm(root, { recursive: true, force: true });
});

const integration = (refreshHook: string) => ({
  grantType: "client_credentials",
  tokenUrl: `${api.origin}/token`,
  clientId: "app",
  clientSecret: "client-secret-value",
  refreshHook,
});

describe("module hooks through the service", () => {
  it("may only name a file inside TOKENWARDEN_HOOKS_DIR", async () => {
    const escapes = [
      "../outside/evil.mjs",
      "sub/../../outside/evil.mjs",
      "./../outside/evil.mjs",
      "good.mjs/../../outside/evil.mjs",
      evil,
      `${hooksDir}/../outside/evil.mjs`,
      "link.mjs",
      "sub/up/evil.mjs",
      pathToFileURL(evil).href,
      `file:${evil}`,
      "data:text/javascript,export default () => ({ access_token: 'x' })",
      "node:child_process",
      "node:fs",
      "%2e%2e/outside/evil.mjs",
      "..\\outside\\evil.mjs",
      "sub",
      ".",
      "missing.mjs",
    ];
    for (const hook of escapes) {
      const res = await withDir.call("PUT", "/v1/integrations/hooked", { body: integration(hook) });
      expect(res.status, hook).toBe(400);
      expect(res.json.error, hook).toMatchObject({ code: "invalid_config", field: "refreshHook" });
    }
    expect(existsSync(marker)).toBe(false);
  });

  it("are confined the same way in an import (POST /v1/import), which then writes nothing", async () => {
    for (const hook of ["../outside/evil.mjs", evil, "link.mjs"]) {
      const res = await withDir.call("POST", "/v1/import", {
        body: {
          integrations: [
            { key: "imported-ok", ...integration("good.mjs") },
            { key: "imported-hook", ...integration(hook) },
          ],
          connections: [],
        },
      });
      expect(res.status, hook).toBe(400);
      expect(res.json.error, hook).toMatchObject({
        code: "invalid_config",
        field: "integrations[1].refreshHook",
      });
    }
    expect((await withDir.call("GET", "/v1/integrations/imported-ok")).status).toBe(404);
    for (const hook of ["good.mjs", evil]) {
      const res = await withoutDir.call("POST", "/v1/import", {
        body: { integrations: [{ key: "imported-hook", ...integration(hook) }] },
      });
      expect(res.status, hook).toBe(400);
    }
    expect(existsSync(marker)).toBe(false);
  });

  it("runs one that is inside, from its real path", async () => {
    for (const hook of ["good.mjs", "./sub/../good.mjs", join(hooksDir, "good.mjs")]) {
      const res = await withDir.call("PUT", "/v1/integrations/good", { body: integration(hook) });
      expect(res.status, hook).toBeLessThan(300);
      expect(res.json.refreshHook).toBe(join(hooksDir, "good.mjs"));
    }
    await withDir.call("PUT", "/v1/connections/g1", { body: { integration: "good" } });
    const token = await withDir.call("GET", "/v1/connections/g1/token");
    expect(token.json.accessToken).toBe("hooked-app");
  });

  it("are refused altogether without TOKENWARDEN_HOOKS_DIR", async () => {
    for (const hook of ["good.mjs", join(hooksDir, "good.mjs"), evil]) {
      const res = await withoutDir.call("PUT", "/v1/integrations/hooked", {
        body: integration(hook),
      });
      expect(res.status, hook).toBe(400);
      expect(res.json.error.field).toBe("refreshHook");
    }
    expect(existsSync(marker)).toBe(false);
  });

  it("may be kept as the declarative file or the library set it", async () => {
    // The library may name any module; an API caller editing the integration keeps it
    // as it is, but cannot point it anywhere new.
    await withoutDir.service.tw.putIntegration({
      key: "lib",
      ...integration(join(hooksDir, "good.mjs")),
    });
    const kept = await withoutDir.call("PUT", "/v1/integrations/lib", {
      body: { ...integration(join(hooksDir, "good.mjs")), displayName: "edited" },
    });
    expect(kept.status).toBe(200);
    const moved = await withoutDir.call("PUT", "/v1/integrations/lib", { body: integration(evil) });
    expect(moved.status).toBe(400);
    expect(existsSync(marker)).toBe(false);
  });
});

describe("URL hooks", () => {
  it("are https://, or http:// on loopback only", async () => {
    for (const hook of [
      "http://evil.example/hook",
      "http://127.0.0.1.evil.example/hook",
      "http://127.0.0.1@evil.example/hook",
      "http://localhost.evil.example/hook",
      "http://evil.example#@127.0.0.1/hook",
      "http://evil.example\\@127.0.0.1/hook",
      "http://10.0.0.1/hook",
      "http://[::2]/hook",
      "HTTP://evil.example/hook",
      "ftp://127.0.0.1/hook",
      "javascript:alert(1)",
      "http:/evil.example/hook",
      "https:evil.example",
    ]) {
      const res = await withDir.call("PUT", "/v1/integrations/url-hook", {
        body: integration(hook),
      });
      expect(res.status, hook).toBe(400);
      expect(res.json.error.field, hook).toBe("refreshHook");
    }
    for (const hook of [
      `${api.origin}/hook`,
      `http://localhost:${api.port}/hook`,
      `http://127.1:${api.port}/hook`,
      `http://[::1]:${api.port}/hook`,
      "https://hooks.example.com/refresh",
    ]) {
      const res = await withDir.call("PUT", "/v1/integrations/url-hook", {
        body: integration(hook),
      });
      expect(res.status, hook).toBeLessThan(300);
    }
    await withDir.call("PUT", "/v1/integrations/url-hook", {
      body: integration(`${api.origin}/hook`),
    });
    await withDir.call("PUT", "/v1/connections/u1", { body: { integration: "url-hook" } });
    expect((await withDir.call("GET", "/v1/connections/u1/token")).json.accessToken).toBe(
      "from-url-hook",
    );
  });
});
