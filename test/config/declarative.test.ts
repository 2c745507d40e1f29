import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { loadDeclarativeFile, parseDeclarative } from "../../src/config/declarative.js";
import {
  addSettingOptions,
  GLOBAL_SETTINGS,
  resolveSettings,
  SERVICE_SETTINGS,
  type SettingFlags,
} from "../../src/config/settings.js";
import { startService } from "../../src/service/serve.js";
import { openBroker } from "../fixtures/broker.js";
import { sqliteDatabase, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import { caught } from "../helpers.js";

const YAML = `
integrations:
  - key: acme
    grantType: client_credentials
    tokenUrl: https://auth.acme.example/oauth/token
    clientId: my-app
    clientSecret: \${ACME_CLIENT_SECRET}
    scopes: [orders.read]
    apiBaseUrl: https://api.acme.example
connections:
  - id: acme-prod
    integration: acme
    environment: prod
`;

let dir: string;
let db: TestDatabase;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-config-"));
  db = await sqliteDatabase();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await db.drop();
});

describe("the declarative file", () => {
  it("reads YAML with ${ENV_VAR} secrets, and JSON", async () => {
    const config = parseDeclarative(YAML, "tokenwarden.yaml", { ACME_CLIENT_SECRET: "from-env" });
    expect(config.integrations[0]).toMatchObject({
      key: "acme",
      clientSecret: "from-env",
      scopes: ["orders.read"],
    });
    expect(config.connections).toEqual([
      { id: "acme-prod", integration: "acme", environment: "prod" },
    ]);
    const path = join(dir, "tw.json");
    await writeFile(
      path,
      JSON.stringify({ integrations: [], connections: [{ id: "x", integration: "y" }] }),
    );
    expect((await loadDeclarativeFile(path)).connections).toHaveLength(1);
  });

  it("names a missing variable and an unknown field", () => {
    expect(() => parseDeclarative(YAML, "tokenwarden.yaml", {})).toThrow(
      "integrations[0].clientSecret: uses ${ACME_CLIENT_SECRET}, which is not set in the environment",
    );
    expect(() => parseDeclarative("integration: []", "tokenwarden.yaml", {})).toThrow(
      "integration: unknown field in tokenwarden.yaml",
    );
    expect(() => parseDeclarative("integrations: [{", "tokenwarden.yaml", {})).toThrow(
      /cannot be read/,
    );
  });

  it("validates everything before writing anything", async () => {
    const tw = await openBroker(db);
    try {
      const config = parseDeclarative(YAML, "tokenwarden.yaml", { ACME_CLIENT_SECRET: "s" });
      const bad = {
        ...config,
        connections: [...config.connections, { id: "bad", integration: "acme", colour: "red" }],
      };
      const e = await caught(() => tw.applyDeclarative(bad));
      expect(e.message).toBe("connections[1].colour: unknown field");
      expect(await tw.listIntegrations()).toEqual([]);
      expect(await tw.applyDeclarative(config)).toEqual({ integrations: 1, connections: 1 });
      expect((await tw.getConnection("acme-prod")).environment).toBe("prod");
      expect((await tw.getIntegration("acme")).clientSecret).toEqual({ set: true });
    } finally {
      await tw.close();
    }
  });

  it("stops serve from starting, naming the problem", async () => {
    const path = join(dir, "tokenwarden.yaml");
    await writeFile(path, YAML);
    const settings = resolveSettings(
      { database: db.url, port: 0, config: path },
      { TOKENWARDEN_SECRET_KEY: TEST_SECRET_KEY },
    );
    const e = await caught(() => startService(settings, { logger: false, scheduler: false }));
    expect(e).toMatchObject({ code: "invalid_config" });
    expect(e.message).toContain("${ACME_CLIENT_SECRET}");
  });
});

/** The settings as the CLI reads them: commander merges flag, variable and default. */
function parsedFlags(args: string[]): SettingFlags {
  const command = addSettingOptions(new Command(), [...GLOBAL_SETTINGS, ...SERVICE_SETTINGS]);
  return command.exitOverride().parse(args, { from: "user" }).opts<SettingFlags>();
}

describe("settings", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("takes flags over variables over defaults, and checks them", () => {
    const env = {
      TOKENWARDEN_PORT: "9000",
      TOKENWARDEN_HOST: "0.0.0.0",
      TOKENWARDEN_API_KEYS: "a, b,,",
    };
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
    expect(resolveSettings({}, {})).toMatchObject({
      database: "sqlite:./data/tokenwarden.db",
      host: "127.0.0.1",
      port: 4180,
      publicUrl: "http://127.0.0.1:4180",
      logLevel: "info",
      apiKeys: [],
    });
    expect(resolveSettings(parsedFlags(["--port", "8000"]), env)).toMatchObject({
      port: 8000,
      host: "0.0.0.0",
      publicUrl: "http://0.0.0.0:8000",
      apiKeys: ["a", "b"],
    });
    expect(resolveSettings({ publicUrl: "https://tokens.example.com/" }, {}).publicUrl).toBe(
      "https://tokens.example.com",
    );
    expect(() => resolveSettings({ port: "http" }, {})).toThrow("port: must be a TCP port number");
    expect(() => resolveSettings({ publicUrl: "tokens.example.com" }, {})).toThrow(/^publicUrl:/);
    expect(() => resolveSettings({ logLevel: "loud" }, {})).toThrow(/^logLevel:/);
  });

  it("takes the token endpoint concurrency from its flag or variable (default 64)", () => {
    expect(resolveSettings(parsedFlags([]), {}).tokenEndpointConcurrency).toBe(64);
    vi.stubEnv("TOKENWARDEN_TOKEN_ENDPOINT_CONCURRENCY", "8");
    expect(resolveSettings(parsedFlags([]), {}).tokenEndpointConcurrency).toBe(8);
    const flagged = parsedFlags(["--token-endpoint-concurrency", "16"]);
    expect(resolveSettings(flagged, {}).tokenEndpointConcurrency).toBe(16);
    for (const bad of ["0", "-1", "1.5", "many", "10001"]) {
      expect(() => resolveSettings({ tokenEndpointConcurrency: bad }, {})).toThrow(
        /^tokenEndpointConcurrency: must be a whole number/,
      );
    }
  });

  it("takes the token cache size from its flag or variable (default 10,000)", () => {
    expect(resolveSettings(parsedFlags([]), {}).tokenCacheSize).toBe(10_000);
    vi.stubEnv("TOKENWARDEN_TOKEN_CACHE_SIZE", "500");
    expect(resolveSettings(parsedFlags([]), {}).tokenCacheSize).toBe(500);
    const flagged = parsedFlags(["--token-cache-size", "2000000"]);
    expect(resolveSettings(flagged, {}).tokenCacheSize).toBe(2_000_000);
    for (const bad of ["0", "-1", "1.5", "many", "10000001"]) {
      expect(() => resolveSettings({ tokenCacheSize: bad }, {})).toThrow(
        /^tokenCacheSize: must be a whole number/,
      );
    }
  });
});
