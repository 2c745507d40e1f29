import { Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey } from "../../src/broker/api-keys.js";
import { migrateUpTo } from "../../src/store/migrations.js";
import type { Database } from "../../src/store/schema.js";
import { sqliteDialect } from "../../src/store/sqlite-driver.js";
import { runCli } from "../fixtures/cli.js";
import { sqliteDatabase, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import {
  ADMIN_KEY,
  type Recorder,
  type SecurityService,
  sendJson,
  startRecorder,
  startSecurityService,
  tokenEndpoint,
} from "./harness.js";

/**
 * API key roles (PRODUCT.md "Security rules" 2), tried by a workflow that holds only a
 * client key: it may read tokens, connections and events and use the proxy, within
 * its integrations and environments, and nothing else.
 */
let db: TestDatabase;
let legacyKey: string;
let tw: SecurityService;
let upstream: Recorder;
const keys: Record<string, string> = {};

/** An API key as an older Tokenwarden stored it, before roles existed. */
async function databaseFromBeforeRoles(url: string): Promise<string> {
  const kysely = new Kysely<Database>({
    dialect: await sqliteDialect(url.slice("sqlite:".length)),
  });
  await migrateUpTo(kysely, "sqlite", "0002_api_keys");
  const old = generateApiKey("from before roles");
  await kysely
    .insertInto("tw_api_keys" as never)
    .values({ id: old.id, name: old.name, hash: old.hash, created_at: Date.now() } as never)
    .execute();
  await kysely.destroy();
  return old.key;
}

beforeAll(async () => {
  db = await sqliteDatabase();
  legacyKey = await databaseFromBeforeRoles(db.url);
  tw = await startSecurityService({ db });
  upstream = await startRecorder();
  tokenEndpoint(upstream);
  upstream.on("/api/*", (req, res) => sendJson(res, 200, { path: req.target }));
  for (const key of ["acme", "other"]) {
    const put = await tw.call("PUT", `/v1/integrations/${key}`, {
      body: {
        grantType: "client_credentials",
        tokenUrl: `${upstream.origin}/token`,
        clientId: "app",
        clientSecret: "s3cret-value",
        apiBaseUrl: `${upstream.origin}/api/${key}`,
      },
    });
    expect(put.status).toBe(201);
  }
  for (const [id, integration, environment] of [
    ["acme-prod", "acme", "prod"],
    ["acme-dev", "acme", "dev"],
    ["other-prod", "other", "prod"],
  ] as const) {
    const put = await tw.call("PUT", `/v1/connections/${id}`, {
      body: { integration, environment },
    });
    expect(put.status).toBe(201);
  }
  const make = async (
    name: string,
    role: "admin" | "client",
    integrations: string[] | null,
    environments: string[] | null,
  ) => {
    const created = await tw.service.tw.apiKeys.create({ name, role, integrations, environments });
    keys[name] = created.key;
  };
  await make("client", "client", null, null);
  await make("acme-prod", "client", ["acme"], ["prod"]);
  await make("prod", "client", null, ["prod"]);
  await make("stored-admin", "admin", null, null);
});
afterAll(async () => {
  await tw.close();
  await upstream.close();
  await db.drop();
});

const key = (name: string) => keys[name] as string;

describe("client keys", () => {
  it("read tokens, connections and events, and use the proxy", async () => {
    const k = key("client");
    const token = await tw.call("GET", "/v1/connections/acme-dev/token", { key: k });
    expect(token.status).toBe(200);
    expect(token.json.accessToken).toMatch(/^access-/);
    expect((await tw.call("GET", "/v1/connections/acme-dev", { key: k })).status).toBe(200);
    expect((await tw.call("GET", "/v1/connections/acme-dev/events", { key: k })).status).toBe(200);
    const list = await tw.call("GET", "/v1/connections", { key: k });
    expect(list.json.connections.map((c: { id: string }) => c.id).sort()).toEqual([
      "acme-dev",
      "acme-prod",
      "other-prod",
    ]);
    const proxied = await tw.call("GET", "/v1/proxy/other-prod/orders", { key: k });
    expect(proxied.status).toBe(200);
    expect(proxied.json.path).toBe("/api/other/orders");
  });

  it("may do nothing else: 403 forbidden, and nothing changes", async () => {
    const k = key("client");
    const attempts: Array<[string, string, unknown?]> = [
      ["GET", "/v1/integrations"],
      ["GET", "/v1/integrations/acme"],
      [
        "PUT",
        "/v1/integrations/acme",
        { grantType: "client_credentials", tokenUrl: "https://evil.example/t", clientId: "x" },
      ],
      ["DELETE", "/v1/integrations/acme"],
      ["PUT", "/v1/connections/acme-dev", { integration: "acme", environment: "prod" }],
      ["DELETE", "/v1/connections/acme-dev"],
      ["POST", "/v1/connections/acme-dev/refresh"],
      ["POST", "/v1/connections/acme-dev/revoke"],
      ["GET", "/v1/connections/acme-dev/authorize"],
      ["GET", "/v1/schemas"],
      ["GET", "/v1/events/stream"],
    ];
    const tokenRequests = upstream.seen.filter((r) => r.target === "/token").length;
    for (const [method, path, body] of attempts) {
      const res = await tw.call(method, path, { key: k, ...(body === undefined ? {} : { body }) });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.json.error.code).toBe("forbidden");
    }
    expect(upstream.seen.filter((r) => r.target === "/token").length).toBe(tokenRequests);
    const still = await tw.call("GET", "/v1/connections/acme-dev");
    expect(still.json).toMatchObject({ environment: "dev", status: "active" });
    expect((await tw.call("GET", "/v1/integrations/acme")).json.tokenUrl).toBe(
      `${upstream.origin}/token`,
    );
  });

  it("stay within their integrations and environments", async () => {
    const k = key("acme-prod");
    expect((await tw.call("GET", "/v1/connections/acme-prod/token", { key: k })).status).toBe(200);
    const before = upstream.seen.length;
    for (const id of ["acme-dev", "other-prod"]) {
      for (const path of [
        `/v1/connections/${id}/token`,
        `/v1/connections/${id}`,
        `/v1/connections/${id}/events`,
        `/v1/proxy/${id}/orders`,
        `/%761/connections/${id}/token`,
      ]) {
        const res = await tw.raw(path, { key: k });
        expect(res.status, path).toBe(403);
        expect(res.json.error.code).toBe("forbidden");
        expect(res.text).not.toContain("access-");
      }
    }
    // Climbing from another connection's proxy path is refused too (as a path, first).
    const climb = await tw.raw("/v1/proxy/acme-dev/../acme-prod/orders", { key: k });
    expect([400, 403]).toContain(climb.status);
    expect(upstream.seen.length).toBe(before);
    const list = await tw.call("GET", "/v1/connections", { key: k });
    expect(list.json.connections.map((c: { id: string }) => c.id)).toEqual(["acme-prod"]);
    // A filter cannot widen the limits.
    const asked = await tw.call("GET", "/v1/connections?integration=other", { key: k });
    expect(asked.json.connections).toEqual([]);
    const byEnvironment = await tw.call("GET", "/v1/connections", { key: key("prod") });
    expect(byEnvironment.json.connections.map((c: { id: string }) => c.id).sort()).toEqual([
      "acme-prod",
      "other-prod",
    ]);
  });

  it("follow a connection moved out of their limits at once", async () => {
    const k = key("prod");
    expect((await tw.call("GET", "/v1/connections/other-prod/token", { key: k })).status).toBe(200);
    await tw.call("PUT", "/v1/connections/other-prod", {
      body: { integration: "other", environment: "staging" },
    });
    expect((await tw.call("GET", "/v1/connections/other-prod/token", { key: k })).status).toBe(403);
    await tw.call("PUT", "/v1/connections/other-prod", {
      body: { integration: "other", environment: "prod" },
    });
    expect((await tw.call("GET", "/v1/connections/other-prod/token", { key: k })).status).toBe(200);
  });
});

describe("admin keys", () => {
  it("are the keys from TOKENWARDEN_API_KEYS, stored admin keys, and every key from before roles", async () => {
    for (const k of [ADMIN_KEY, key("stored-admin"), legacyKey]) {
      const res = await tw.call("PUT", "/v1/integrations/made-by-admin", {
        key: k,
        body: {
          grantType: "client_credentials",
          tokenUrl: `${upstream.origin}/token`,
          clientId: "x",
        },
      });
      expect([200, 201]).toContain(res.status);
      expect((await tw.call("GET", "/v1/schemas", { key: k })).status).toBe(200);
    }
    const stored = await tw.service.tw.apiKeys.list();
    expect(stored.find((k) => k.name === "from before roles")).toMatchObject({
      role: "admin",
      integrations: null,
      environments: null,
    });
  });
});

describe("tokenwarden apikey", () => {
  it("creates a limited client key that the running service honours, and lists roles and limits", async () => {
    const env = { TOKENWARDEN_DATABASE_URL: db.url, TOKENWARDEN_SECRET_KEY: TEST_SECRET_KEY };
    const created = await runCli(
      [
        "apikey",
        "create",
        "--name",
        "job",
        "--role",
        "client",
        "--integration",
        "acme",
        "--environment",
        "prod",
        "--environment",
        "dev",
      ],
      { env },
    );
    expect(created.code, created.stderr).toBe(0);
    const cliKey = created.stdout.trim();
    let status = 0;
    for (let tries = 0; tries < 30 && status !== 200; tries++) {
      status = (await tw.call("GET", "/v1/connections/acme-dev/token", { key: cliKey })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    expect((await tw.call("GET", "/v1/connections/other-prod/token", { key: cliKey })).status).toBe(
      403,
    );
    expect((await tw.call("GET", "/v1/integrations", { key: cliKey })).status).toBe(403);

    const listed = await runCli(["apikey", "list", "--json"], { env });
    expect(JSON.parse(listed.stdout)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          name: "job",
          role: "client",
          integrations: ["acme"],
          environments: ["prod", "dev"],
        }),
      ]),
    );
    expect(listed.stdout).not.toContain(cliKey);
    const table = await runCli(["apikey", "list"], { env });
    expect(table.stdout).toMatch(/job\s+client\s+integrations acme; environments prod,dev/);

    const refused = await runCli(["apikey", "create", "--role", "admin", "--integration", "acme"], {
      env,
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("role");
    const badRole = await runCli(["apikey", "create", "--role", "root"], { env });
    expect(badRole.code).not.toBe(0);
  });
});
