import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Tokenwarden } from "../../src/broker/tokenwarden.js";
import { type ConnectionState, parseConnection } from "../../src/core/connection.js";
import { TokenwardenError } from "../../src/core/errors.js";
import { parseIntegration } from "../../src/core/integration.js";
import type { TokenSet } from "../../src/core/token-set.js";
import { openStore, type Store } from "../../src/store/index.js";
import type { Database } from "../../src/store/schema.js";
import { sqliteDialect } from "../../src/store/sqlite-driver.js";
import { describeEachDriver, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";

/** The same database under the store's feet, for rows as another version wrote them. */
async function rawDatabase(url: string): Promise<Kysely<Database>> {
  if (url.startsWith("sqlite:"))
    return new Kysely<Database>({ dialect: await sqliteDialect(url.slice("sqlite:".length)) });
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

const INTEGRATION_INPUT = {
  key: "older",
  grantType: "client_credentials",
  tokenUrl: "https://as.example/token",
  apiBaseUrl: "https://api.example/v1",
  clientId: "app",
} as const;

const ACTIVE: ConnectionState = {
  status: "active",
  expiresAt: null,
  nextRefreshAt: null,
  lastRefreshAt: null,
  failureCount: 0,
  lastError: null,
  scope: null,
  tokenVersion: 0,
};

/** The error a promise fails with, for assertions on its code and message. */
async function failure(promise: Promise<unknown>): Promise<TokenwardenError> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(TokenwardenError);
  return outcome as TokenwardenError;
}

await describeEachDriver("stored documents on $name", ({ create }) => {
  let db: TestDatabase;
  let store: Store;
  let raw: Kysely<Database>;
  beforeAll(async () => {
    db = await create();
    store = await openStore({ database: db.url, secretKey: TEST_SECRET_KEY });
    raw = await rawDatabase(db.url);
  });
  afterAll(async () => {
    await raw.destroy();
    await store.close();
    await db.drop();
  });

  it("an integration row written before a field existed reads with the schema's default", async () => {
    const current = parseIntegration(INTEGRATION_INPUT);
    // As a version before `allowedApiOrigins` wrote it: every other field, not that one.
    const { allowedApiOrigins: _added, ...older } = current;
    expect(Object.keys(older)).not.toContain("allowedApiOrigins");
    await raw
      .insertInto("tw_integrations")
      .values({
        key: "older",
        document: JSON.stringify(older),
        sealed_client_secret: null,
        sealed_secrets: null,
        created_at: 1,
        updated_at: 1,
      })
      .execute();

    const read = await store.getIntegration("older");
    expect(read?.integration.allowedApiOrigins).toEqual([]);
    expect(read?.integration).toEqual(current);
    expect((await store.listIntegrations()).map((s) => s.integration)).toEqual([current]);
  });

  it("every read is a copy of its own: a caller changing what it read changes no later read", async () => {
    const first = await store.getIntegration("older");
    first?.integration.scopes.push("changed-by-a-caller");
    if (first !== undefined) first.integration.tokenUrl = "https://elsewhere.example/token";
    const again = await store.getIntegration("older");
    expect(again?.integration).toEqual(parseIntegration(INTEGRATION_INPUT));
    // A write is read back as written, not as parsed before.
    await store.putIntegration(parseIntegration({ ...INTEGRATION_INPUT, scopes: ["new"] }), 2);
    expect((await store.getIntegration("older"))?.integration.scopes).toEqual(["new"]);
    await store.putIntegration(parseIntegration(INTEGRATION_INPUT), 3);
  });

  it("a connection row written before its defaulted fields existed reads with their defaults", async () => {
    await raw
      .insertInto("tw_connections")
      .values({
        id: "older-1",
        integration: "older",
        environment: "",
        // Neither `environment` nor `parameters` in the document.
        document: JSON.stringify({ id: "older-1", integration: "older" }),
        sealed_secrets: null,
        status: "active",
        sealed_token: null,
        token_version: 0,
        expires_at: null,
        next_refresh_at: null,
        last_refresh_at: null,
        failure_count: 0,
        last_error: null,
        scope: null,
        created_at: 1,
        updated_at: 1,
      })
      .execute();

    const read = await store.getConnection("older-1");
    expect(read?.connection).toEqual({
      id: "older-1",
      integration: "older",
      environment: "",
      parameters: {},
    });
    expect(read?.token).toBeUndefined();
  });

  it("an integration document that no longer parses is a storage_error naming the row and the field", async () => {
    const { allowedApiOrigins: _unused, ...document } = parseIntegration({
      ...INTEGRATION_INPUT,
      key: "damaged",
    });
    await raw
      .insertInto("tw_integrations")
      .values({
        key: "damaged",
        document: JSON.stringify({ ...document, grantType: "telepathy" }),
        sealed_client_secret: null,
        sealed_secrets: null,
        created_at: 1,
        updated_at: 1,
      })
      .execute();

    const error = await failure(store.getIntegration("damaged"));
    expect(error.code).toBe("storage_error");
    expect(error.message).toContain("integration damaged");
    expect(error.message).toContain("grantType");
    expect((await failure(store.listIntegrations())).code).toBe("storage_error");

    // Not JSON at all: JSON.parse's own message would quote the text, so it is not used.
    await raw
      .updateTable("tw_integrations")
      .set({ document: '{"key":"damaged","clientSecret":"hunter2-in-the-clear"' })
      .where("key", "=", "damaged")
      .execute();
    const garbled = await failure(store.getIntegration("damaged"));
    expect(garbled.code).toBe("storage_error");
    expect(garbled.message).toContain("integration damaged");
    expect(garbled.message).not.toContain("hunter2");
    await raw.deleteFrom("tw_integrations").where("key", "=", "damaged").execute();
  });

  it("a stored expiredBodyPattern RE2 now refuses reads as stored (it is checked again where it is used)", async () => {
    const document = {
      ...parseIntegration({ ...INTEGRATION_INPUT, key: "legacy-pattern" }),
      expiredBodyPattern: "(expired)\\1",
    };
    await raw
      .insertInto("tw_integrations")
      .values({
        key: "legacy-pattern",
        document: JSON.stringify(document),
        sealed_client_secret: null,
        sealed_secrets: null,
        created_at: 1,
        updated_at: 1,
      })
      .execute();
    expect((await store.getIntegration("legacy-pattern"))?.integration).toEqual(document);

    // Only the rule on the text is let go: a pattern that is not text is damage.
    await raw
      .updateTable("tw_integrations")
      .set({ document: JSON.stringify({ ...document, expiredBodyPattern: 42 }) })
      .where("key", "=", "legacy-pattern")
      .execute();
    const error = await failure(store.getIntegration("legacy-pattern"));
    expect(error.code).toBe("storage_error");
    expect(error.message).toContain("expiredBodyPattern");
    await raw.deleteFrom("tw_integrations").where("key", "=", "legacy-pattern").execute();
  });

  it("a damaged token, last error or status is a storage_error naming the connection, never quoting it", async () => {
    await store.putConnection(parseConnection({ id: "c1", integration: "older" }), 1, ACTIVE);
    // A token set of the wrong shape, sealed under the right key.
    const notATokenSet = { accessToken: 42, raw: "hunter2" } as unknown as TokenSet;
    await store.updateState("c1", { token: notATokenSet }, 2);
    const token = await failure(store.getConnection("c1"));
    expect(token.code).toBe("storage_error");
    expect(token.message).toContain("token of connection c1");
    expect(token.message).toContain("accessToken");
    expect(token.message).not.toContain("hunter2");

    await store.updateState("c1", { token: null }, 3);
    await raw
      .updateTable("tw_connections")
      .set({ last_error: '{"code":"x","message":"hunter2' })
      .where("id", "=", "c1")
      .execute();
    const lastError = await failure(store.getConnection("c1"));
    expect(lastError.code).toBe("storage_error");
    expect(lastError.message).toContain("last error of connection c1");
    expect(lastError.message).not.toContain("hunter2");
    expect((await failure(store.listConnections())).code).toBe("storage_error");

    await raw
      .updateTable("tw_connections")
      .set({ last_error: null, status: "dormant" })
      .where("id", "=", "c1")
      .execute();
    const status = await failure(store.readTokenVersion("c1"));
    expect(status.code).toBe("storage_error");
    expect(status.message).toContain("status of connection c1");
    await store.deleteConnection("c1");
  });

  it("a token asked for through a damaged integration fails as storage_error, not as a crash", async () => {
    await store.putConnection(parseConnection({ id: "c2", integration: "older" }), 1, ACTIVE);
    await raw
      .updateTable("tw_integrations")
      .set({ document: JSON.stringify({ key: "older", grantType: "client_credentials" }) })
      .where("key", "=", "older")
      .execute();
    const tw = await Tokenwarden.open({ store, scheduler: false });
    try {
      const error = await failure(tw.getToken("c2"));
      expect(error.code).toBe("storage_error");
      expect(error.message).toContain("integration older");
      expect(error.message).toContain("tokenUrl");
    } finally {
      await tw.close();
    }
  });
});
