/**
 * The token read's lane (token-read-lane.ts) answers only what the route would answer
 * the same way, and hands everything else to Fastify: checked on the lane alone over
 * real HTTP (which requests it takes), against Fastify's router (every path it takes
 * is the token route's, with the same id), and side by side with a server without
 * the lane (the same answers, headers and metrics). Tokens come from oidc-provider.
 */
import { createServer, type Server } from "node:http";
import type { FastifyInstance } from "fastify";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiKeyRing } from "../../src/broker/api-key-ring.js";
import type { Tokenwarden } from "../../src/broker/tokenwarden.js";
import { ManualClock } from "../../src/core/clock.js";
import { buildServer } from "../../src/service/server.js";
import { TokenBodies } from "../../src/service/token-bodies.js";
import {
  type TokenReadLane,
  tokenReadLane,
  tokenReadTarget,
} from "../../src/service/token-read-lane.js";
import { openBroker } from "../fixtures/broker.js";
import { sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";
import { listen } from "../fixtures/listen.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";

const ADMIN_KEY = "lane-admin-key-0123456789";
const clock = new ManualClock(Date.now());
let op: OidcFixture;
let db: TestDatabase;
let tw: Tokenwarden;
let keys: ApiKeyRing;
let clientKey: string;
let limitedKey: string;
/** The service as it runs, lane and all. */
let laned: FastifyInstance;
/** The same service without the lane: Fastify answers everything. */
let plain: FastifyInstance;
let lanedUrl: string;
let plainUrl: string;

beforeAll(async () => {
  op = await startOidcProvider();
  db = await sqliteDatabase();
  tw = await openBroker(db, { clock });
  await tw.putIntegration({
    key: "cc",
    grantType: "client_credentials",
    tokenUrl: op.tokenUrl,
    clientId: BASIC_CLIENT_ID,
    clientSecret: BASIC_CLIENT_SECRET,
    scopes: ["api:read"],
  });
  await tw.putConnection({ id: "c1", integration: "cc" });
  await tw.putConnection({ id: "c2", integration: "cc" });
  clientKey = (await tw.apiKeys.create({ name: "client", role: "client" })).key;
  limitedKey = (
    await tw.apiKeys.create({ name: "limited", role: "client", integrations: ["other"] })
  ).key;
  keys = tw.apiKeys.ring([ADMIN_KEY]);
  await keys.reload();
  const server = (tokenReadLane?: boolean) =>
    buildServer({
      tw,
      keys,
      publicUrl: "http://127.0.0.1",
      logger: false,
      ...(tokenReadLane === undefined ? {} : { tokenReadLane }),
    });
  laned = await server();
  plain = await server(false);
  lanedUrl = await laned.listen({ host: "127.0.0.1", port: 0 });
  plainUrl = await plain.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  await laned?.close();
  await plain?.close();
  await tw?.close();
  await db?.drop();
  await op?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

async function get(
  base: string,
  path: string,
  headers: Record<string, string> = {},
  method: "GET" | "HEAD" | "POST" = "GET",
  sent?: string,
): Promise<Answer> {
  const res = await request(`${base}${path}`, {
    method,
    headers,
    ...(sent === undefined ? {} : { body: sent }),
  });
  const body = await res.body.text();
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) flat[name] = String(value);
  return { status: res.statusCode, headers: flat, body };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe("which paths the lane takes", () => {
  it("takes the canonical path only, with the id as the router reads it", () => {
    expect(tokenReadTarget("/v1/connections/c1/token")).toBe("c1");
    expect(tokenReadTarget("/v1/connections/A-b_9/token")).toBe("A-b_9");
    for (const spelling of [
      "/v1/connections/c1/token/",
      "/v1/connections/c1/token?",
      "/v1/connections/c1/token?minTtl=60",
      "/v1/connections/c1/token#x",
      "/v1/connections/c1/token;x",
      "/v1/connections/c1/token%2F",
      "//v1/connections/c1/token",
      "/v1//connections/c1/token",
      "/V1/connections/c1/token",
      "/v1/Connections/c1/token",
      "/v1/connections/c1/Token",
      "/%761/connections/c1/token",
      "/v1/connections/%63%31/token",
      "/v1/connections/c1/%74oken",
      "/v1/connections/../connections/c1/token",
      "/v1/connections/./token",
      "/v1/connections/c1/./token",
      "/v1/connections/-c1/token",
      "/v1/connections//token",
      `/v1/connections/${"a".repeat(65)}/token`,
      "http://127.0.0.1/v1/connections/c1/token",
      "/v1/connections/c1/token\n",
      "/v1/connections/c 1/token",
      "/v1/connections/c1/events",
      "*",
      "",
    ]) {
      expect(tokenReadTarget(spelling), spelling).toBeUndefined();
    }
  });

  it("takes no path that Fastify's router does not give to the token route with the same id", () => {
    const reference = plain.findRoute({ method: "GET", url: "/v1/connections/c1/token" });
    expect(reference).not.toBeNull();
    // Paths built from the route's own pieces and the characters that change how a
    // path is read; a fixed seed, so a failure can be replayed.
    const pieces = [
      "/",
      "v1",
      "V1",
      "connections",
      "token",
      "c1",
      "a-b",
      "%2F",
      "%63",
      ".",
      "..",
      "?",
      "#",
      ";",
      "_",
      "-",
      "x",
      " ",
      "%",
      "\\",
    ];
    let seed = 7;
    const next = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed;
    };
    let taken = 0;
    for (let i = 0; i < 20_000; i++) {
      const parts = ["/v1/connections/"];
      const n = 1 + (next() % 6);
      for (let j = 0; j < n; j++) parts.push(pieces[next() % pieces.length] as string);
      if (next() % 2 === 0) parts.push("/token");
      const url = parts.join("");
      const id = tokenReadTarget(url);
      if (id === undefined) continue;
      taken++;
      const route = plain.findRoute({ method: "GET", url });
      expect(route?.handler, url).toBe(reference?.handler);
      expect(route?.params, url).toEqual({ id });
    }
    expect(taken).toBeGreaterThan(100);
  });
});

describe("the lane alone, over HTTP", () => {
  let closing = false;
  let lane: TokenReadLane;
  let server: Server;
  let url: string;
  const observed: number[] = [];

  beforeAll(async () => {
    lane = tokenReadLane({
      tw,
      keys,
      bodies: new TokenBodies(),
      metrics: { observeTokenRead: (seconds) => observed.push(seconds) },
      isClosing: () => closing,
    });
    // What the lane leaves is answered 599 here, so a test sees which requests it took.
    server = createServer((req, res) => {
      if (lane(req, res)) return;
      req.resume();
      res.writeHead(599).end();
    });
    url = `http://127.0.0.1:${await listen(server, 0)}`;
  });
  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  it("leaves a token that is not cached yet, then answers it once read", async () => {
    expect((await get(url, "/v1/connections/c2/token", bearer(ADMIN_KEY))).status).toBe(599);
    const before = op.tokenRequestLog.length;
    await tw.getToken("c2");
    expect(op.tokenRequestLog.length).toBe(before + 1);
    const count = observed.length;
    const answer = await get(url, "/v1/connections/c2/token", bearer(clientKey));
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).accessToken).toBe((await tw.getToken("c2")).accessToken);
    expect(observed.length).toBe(count + 1);
    expect(op.tokenRequestLog.length).toBe(before + 1);
  });

  it("leaves every request it would answer differently", async () => {
    await tw.getToken("c2");
    const path = "/v1/connections/c2/token";
    const left: [string, Promise<Answer>][] = [
      ["no key", get(url, path)],
      ["an unknown key", get(url, path, bearer("not-a-key-at-all"))],
      ["a key with limits", get(url, path, bearer(limitedKey))],
      ["Basic", get(url, path, { authorization: `Basic ${ADMIN_KEY}` })],
      ["a body", get(url, path, bearer(ADMIN_KEY), "GET", "hello")],
      ["HEAD", get(url, path, bearer(ADMIN_KEY), "HEAD")],
      ["POST", get(url, path, bearer(ADMIN_KEY), "POST")],
      ["a query", get(url, `${path}?minTtl=30`, bearer(ADMIN_KEY))],
      ["another spelling", get(url, "/v1/connections/%63%32/token", bearer(ADMIN_KEY))],
      ["an unknown connection", get(url, "/v1/connections/nope/token", bearer(ADMIN_KEY))],
    ];
    for (const [what, answer] of left) expect((await answer).status, what).toBe(599);
    closing = true;
    expect((await get(url, path, bearer(ADMIN_KEY))).status).toBe(599);
    closing = false;
    expect((await get(url, path, bearer(ADMIN_KEY))).status).toBe(200);
  });

  it("echoes a sane x-request-id and replaces a hostile one, as Fastify does", async () => {
    await tw.getToken("c2");
    const path = "/v1/connections/c2/token";
    const sane = await get(url, path, { ...bearer(ADMIN_KEY), "x-request-id": "trace:42" });
    expect(sane.status).toBe(200);
    expect(sane.headers["x-request-id"]).toBe("trace:42");
    const hostile = await get(url, path, { ...bearer(ADMIN_KEY), "x-request-id": '{"a":1}' });
    expect(hostile.status).toBe(200);
    expect(hostile.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("leaves a token past its time, which the route renews", async () => {
    await tw.getToken("c2");
    expect((await get(url, "/v1/connections/c2/token", bearer(ADMIN_KEY))).status).toBe(200);
    clock.advance(24 * 3600 * 1000);
    try {
      expect((await get(url, "/v1/connections/c2/token", bearer(ADMIN_KEY))).status).toBe(599);
      const before = op.tokenRequestLog.length;
      const renewed = await get(plainUrl, "/v1/connections/c2/token", bearer(ADMIN_KEY));
      expect(renewed.status).toBe(200);
      expect(op.tokenRequestLog.length).toBe(before + 1);
    } finally {
      clock.advance(-24 * 3600 * 1000);
    }
  });
});

describe("the service with the lane answers as the service without it", () => {
  /** The answer without what differs by nature: the date and a new request id. */
  const comparable = ({ status, headers, body }: Answer) => {
    const { date: _date, "x-request-id": id, ...rest } = headers;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    return { status, headers: rest, body };
  };

  it("sends the same status, headers and body for each request", async () => {
    await tw.getToken("c1");
    const cases: [string, Record<string, string>][] = [
      ["/v1/connections/c1/token", bearer(ADMIN_KEY)],
      ["/v1/connections/c1/token", bearer(clientKey)],
      ["/v1/connections/c1/token", { authorization: `bearer  ${clientKey}` }],
      ["/v1/connections/c1/token", bearer(limitedKey)],
      ["/v1/connections/c1/token", bearer("wrong")],
      ["/v1/connections/c1/token", {}],
      ["/v1/connections/nope/token", bearer(ADMIN_KEY)],
      ["/v1/connections/c1/token/", bearer(ADMIN_KEY)],
      ["/v1/connections/%63%31/token", bearer(ADMIN_KEY)],
    ];
    for (const [path, headers] of cases) {
      const viaLane = comparable(await get(lanedUrl, path, headers));
      const viaFastify = comparable(await get(plainUrl, path, headers));
      expect(viaLane, `${path} ${JSON.stringify(headers)}`).toEqual(viaFastify);
    }
  });

  it("counts the reads it answers in the request duration metric", async () => {
    await tw.getToken("c1");
    const count = async () => {
      const metrics = await get(lanedUrl, "/metrics", bearer(ADMIN_KEY));
      const line = metrics.body
        .split("\n")
        .find(
          (l) =>
            l.startsWith("http_request_duration_seconds_count") &&
            l.includes('route="/v1/connections/:id/token"') &&
            l.includes('status_code="200"'),
        );
      return Number(line?.split(" ").at(-1) ?? 0);
    };
    const before = await count();
    for (let i = 0; i < 5; i++)
      expect((await get(lanedUrl, "/v1/connections/c1/token", bearer(ADMIN_KEY))).status).toBe(200);
    expect(await count()).toBe(before + 5);
  });
});
