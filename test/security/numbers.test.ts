import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tokenwarden } from "../../src/broker/tokenwarden.js";
import { parseIntegration } from "../../src/core/integration.js";
import { MAX_LIFETIME_SECONDS } from "../../src/core/refresh-policy.js";
import {
  MAX_RETRY_AFTER_SECONDS,
  parseRetryAfter,
  tokenSetFromBody,
} from "../../src/oauth/token-response.js";
import { storeOf } from "../fixtures/broker.js";
import { describeEachDriver, sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import {
  newKey,
  openTw,
  rawQuery,
  startTestService,
  type TestService,
  tokenSet,
} from "./support.js";

/**
 * Numbers are bounded (PRODUCT.md security rule 7): a lifetime no one meant is treated
 * as no lifetime, and no stored number can make a listing fail.
 */
const ISSUED = Date.UTC(2030, 0, 1);
const settings = (session: "auto" | "fixed" | "none", responseMap = {}) => ({
  session,
  fixedTtlSeconds: 3600,
  refreshAheadSeconds: 60,
  responseMap,
});

describe("server lifetimes", () => {
  const absurd: unknown[] = [
    1e308,
    Number.MAX_VALUE,
    "12345678901234567890123",
    " 99999999999999999999 ",
    MAX_LIFETIME_SECONDS + 1,
    String(MAX_LIFETIME_SECONDS + 1),
    -1,
    0,
    "-5",
    "1e308",
    "Infinity",
    "0x10",
  ];

  it.each(absurd)("treats expires_in %j as absent", (expiresIn) => {
    const body = { access_token: "A", expires_in: expiresIn };
    expect(tokenSetFromBody(body, settings("auto"), ISSUED, "t").expiresAt).toBe(ISSUED + 3600_000);
    expect(tokenSetFromBody(body, settings("none"), ISSUED, "t").expiresAt).toBeNull();
  });

  const absurdDates: unknown[] = [
    1e308,
    "+275760-09-13T00:00:00.000Z",
    "+200000-01-01T00:00:00Z",
    8.64e15 + 1,
    -1e12,
    "2000-01-01T00:00:00Z",
    "tomorrow",
  ];
  it.each(absurdDates)(
    "treats an absolute expiry %j beyond ten years (or past) as absent",
    (at) => {
      const body = { access_token: "A", data: { until: at } };
      const set = tokenSetFromBody(
        body,
        settings("auto", { expiresAt: "data.until" }),
        ISSUED,
        "t",
      );
      expect(set.expiresAt).toBe(ISSUED + 3600_000);
    },
  );

  it("keeps a long lifetime that is still sane", () => {
    const body = { access_token: "A", expires_in: MAX_LIFETIME_SECONDS };
    expect(tokenSetFromBody(body, settings("auto"), ISSUED, "t").expiresAt).toBe(
      ISSUED + MAX_LIFETIME_SECONDS * 1000,
    );
  });

  it("waits at most a day for a Retry-After, however it is spelled", () => {
    expect(parseRetryAfter("99999999999999999999999")).toBe(MAX_RETRY_AFTER_SECONDS);
    expect(parseRetryAfter("Fri, 31 Dec 275759 23:59:59 GMT", ISSUED)).toBe(
      MAX_RETRY_AFTER_SECONDS,
    );
    expect(parseRetryAfter("120")).toBe(120);
  });

  it.each([
    ["fixedTtlSeconds", 1e308],
    ["fixedTtlSeconds", MAX_LIFETIME_SECONDS + 1],
    ["refreshAheadSeconds", 1e20],
    ["refreshAheadSeconds", MAX_LIFETIME_SECONDS + 1],
    ["timeoutMs", 1e308],
  ])("refuses %s = %d when written", (field, value) => {
    let error: unknown;
    try {
      parseIntegration({
        key: "k",
        grantType: "client_credentials",
        tokenUrl: "https://a.example/t",
        [field]: value,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: "invalid_config", field });
  });
});

await describeEachDriver("stored numbers on $name", ({ name, create }) => {
  let db: TestDatabase;
  let tw: Tokenwarden;
  let server: QuirkServer;
  beforeAll(async () => {
    db = await create();
    tw = await openTw(db, newKey());
    server = await startQuirkServer();
  });
  afterAll(async () => {
    await tw.close();
    await server.close();
    await db.drop();
  });

  it.each([
    ["1e308", "1e308"],
    ["a 23-digit string", '"12345678901234567890123"'],
    ["a date in the year 200000", '"+200000-01-01T00:00:00Z"'],
  ])("a token server answering expires_in %s leaves every listing working", async (label, raw) => {
    const id = `big-${label.replace(/[^a-z0-9]/gi, "")}`.slice(0, 60);
    server.on(`/${id}`, (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        `{"access_token":"AT-${id}","token_type":"bearer","expires_in":${raw},"until":${raw}}`,
      );
    });
    await tw.putIntegration({
      key: id,
      grantType: "client_credentials",
      tokenUrl: server.url(`/${id}`),
      clientId: "app",
      clientSecret: "s",
      responseMap: { expiresAt: "until" },
    });
    await tw.putConnection({ id, integration: id });
    const token = await tw.getToken(id);
    expect(token.accessToken).toBe(`AT-${id}`);
    const expiresAt = Date.parse(token.expiresAt as string);
    expect(expiresAt).toBeGreaterThan(Date.now());
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 3600_000 + 1000);
    const listed = await tw.listConnections();
    expect(listed.find((c) => c.id === id)?.expiresAt).toBe(token.expiresAt);
  });

  it("views never throw on an out-of-range time stored by an older version", async () => {
    server.on("/plain", (_req, res) => json(res, 200, { access_token: "P", expires_in: 60 }));
    await tw.putIntegration({
      key: "plain",
      grantType: "client_credentials",
      tokenUrl: server.url("/plain"),
      clientId: "app",
    });
    await tw.putConnection({ id: "stored-big", integration: "plain" });
    // The largest a bigint column holds on PostgreSQL; SQLite takes any double.
    const big = name === "postgres" ? "9000000000000000000" : "1e308";
    await rawQuery(
      db,
      `update tw_connections set expires_at = ${big}, next_refresh_at = ${big}, last_refresh_at = -${big} where id = 'stored-big'`,
    );
    await storeOf(tw).updateState(
      "stored-big",
      { token: tokenSet({ expiresAt: 1e308, issuedAt: Date.now() }) },
      Date.now(),
    );
    await rawQuery(db, `update tw_connections set expires_at = ${big} where id = 'stored-big'`);
    const view = await tw.getConnection("stored-big");
    expect(view.expiresAt).toBe("+275760-09-13T00:00:00.000Z");
    expect(view.lastRefreshAt).toBe("-271821-04-20T00:00:00.000Z");
    expect((await tw.listConnections()).length).toBeGreaterThan(1);
    expect((await tw.getToken("stored-big")).expiresAt).toBe("+275760-09-13T00:00:00.000Z");
  });
});

describe("through the service", () => {
  let db: TestDatabase;
  let service: TestService;
  let server: QuirkServer;
  beforeAll(async () => {
    db = await sqliteDatabase();
    service = await startTestService(db, newKey());
    server = await startQuirkServer();
  });
  afterAll(async () => {
    await service.close();
    await server.close();
    await db.drop();
  });

  it("lists connections (200) after a token with expires_in 1e308, and refuses absurd settings", async () => {
    server.on("/huge", (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"access_token":"H","expires_in":1e308}');
    });
    const put = await service.call("PUT", "/v1/integrations/huge", {
      grantType: "client_credentials",
      tokenUrl: server.url("/huge"),
      clientId: "app",
    });
    expect(put.status).toBe(201);
    expect(
      (await service.call("PUT", "/v1/connections/huge-1", { integration: "huge" })).status,
    ).toBe(201);
    expect((await service.call("GET", "/v1/connections/huge-1/token")).status).toBe(200);
    const list = await service.call("GET", "/v1/connections");
    expect(list.status).toBe(200);
    expect(list.json.connections[0].expiresAt).toMatch(/^20\d\d-/);
    const refused = await service.call("PUT", "/v1/integrations/huge", {
      grantType: "client_credentials",
      tokenUrl: server.url("/huge"),
      clientId: "app",
      fixedTtlSeconds: 1e308,
    });
    expect(refused.status).toBe(400);
    expect(refused.json.error.field).toBe("fixedTtlSeconds");
  });
});
