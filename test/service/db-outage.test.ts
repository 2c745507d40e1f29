import pg from "pg";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_SECRET_KEY } from "../fixtures/databases.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { type PgCluster, skipWithoutPgCluster, startPgCluster } from "../fixtures/pg-cluster.js";
import { freePort } from "../fixtures/ports.js";
import { type ServiceProcess, startServiceProcess } from "../fixtures/service-process.js";
import { until } from "../fixtures/until.js";
import type { LooseJson } from "../helpers.js";

/**
 * Two `tokenwarden serve` processes on a PostgreSQL cluster of the test's own, which
 * the test restarts, stops for a while and starts again. Process B logs in as its own
 * role, so the test can keep B (and only B) off the database to make it miss a change.
 */
let cluster: PgCluster;
let admin: pg.Client;
let op: OidcFixture;
let a: ServiceProcess;
let b: ServiceProcess;
let apiKey: string;

interface Answer {
  status: number;
  retryAfter: string | undefined;
  json: LooseJson;
}

async function call(
  service: ServiceProcess,
  method: string,
  path: string,
  body?: unknown,
): Promise<Answer> {
  const res = await request(`${service.url}${path}`, {
    method: method as "GET",
    headers: {
      authorization: `Bearer ${apiKey}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    // No answer in this long would be a hang: the timeouts exist to prevent one.
    headersTimeout: 20_000,
    bodyTimeout: 20_000,
  });
  const text = await res.body.text();
  const retryAfter = res.headers["retry-after"];
  return {
    status: res.statusCode,
    retryAfter: typeof retryAfter === "string" ? retryAfter : undefined,
    json: (String(res.headers["content-type"]).startsWith("application/json")
      ? JSON.parse(text)
      : text) as LooseJson,
  };
}

const tokenOf = async (service: ServiceProcess, id: string) => {
  const answer = await call(service, "GET", `/v1/connections/${id}/token`);
  expect(answer.status, JSON.stringify(answer.json)).toBe(200);
  return answer.json.accessToken as string;
};

/** How many LISTEN connections the cluster has (the processes' change channels). */
async function listeners(): Promise<number> {
  const client = new pg.Client({ connectionString: cluster.url });
  client.on("error", () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query(
      "select count(*)::int as n from pg_stat_activity where application_name = 'tokenwarden-listen'",
    );
    return (rows[0] as { n: number }).n;
  } finally {
    await client.end();
  }
}

function expectAlive(): void {
  expect(a.exited, a.output()).toBeUndefined();
  expect(b.exited, b.output()).toBeUndefined();
}

function expectStorageError(answer: Answer): void {
  expect(answer.status, JSON.stringify(answer.json)).toBe(503);
  expect(answer.json.error.code).toBe("storage_error");
  expect(answer.retryAfter).toBe("5");
}

describe.skipIf(skipWithoutPgCluster("the database outage tests"))(
  "two services while PostgreSQL restarts, stops and comes back",
  () => {
    beforeAll(async () => {
      cluster = await startPgCluster();
      admin = new pg.Client({ connectionString: cluster.url });
      admin.on("error", () => undefined); // the test restarts the server under it
      await admin.connect();
      await admin.query("create role b_user superuser login");
      await admin.end();
      op = await startOidcProvider({ accessTokenTtlSeconds: 300 });
      const env = (database: string): Record<string, string> => ({
        TOKENWARDEN_DATABASE_URL: database,
        TOKENWARDEN_SECRET_KEY: TEST_SECRET_KEY,
        TOKENWARDEN_PORT: "0",
      });
      // No TOKENWARDEN_API_KEYS: the key is a stored one, which must keep working
      // while the database cannot be asked about it.
      a = await startServiceProcess({
        ...env(cluster.url),
        TOKENWARDEN_PORT: String(await freePort()),
      });
      apiKey = a.firstApiKey as string;
      expect(apiKey).toMatch(/^tw_/);
      const bUrl = new URL(cluster.url);
      bUrl.username = "b_user";
      b = await startServiceProcess({
        ...env(bUrl.toString()),
        TOKENWARDEN_PORT: String(await freePort()),
      });
      expect(b.firstApiKey).toBeUndefined();
      const put = await call(a, "PUT", "/v1/integrations/cc", {
        grantType: "client_credentials",
        tokenUrl: op.tokenUrl,
        clientId: BASIC_CLIENT_ID,
        clientSecret: BASIC_CLIENT_SECRET,
        scopes: ["api:read"],
      });
      expect(put.status).toBe(201);
      for (const id of ["steady", "uncached"])
        expect((await call(a, "PUT", `/v1/connections/${id}`, { integration: "cc" })).status).toBe(
          201,
        );
      // Both processes hold the same token in memory.
      expect(await tokenOf(b, "steady")).toBe(await tokenOf(a, "steady"));
    }, 60_000);

    afterAll(async () => {
      await a?.stop();
      await b?.stop();
      await op?.close();
      await cluster?.destroy();
    });

    it("keep serving through a fast restart, and write again once it is done", async () => {
      const token = await tokenOf(a, "steady");
      await cluster.restart();
      expect(await tokenOf(a, "steady")).toBe(token);
      expect(await tokenOf(b, "steady")).toBe(token);
      for (const service of [a, b]) {
        await until("ready", async () =>
          (await call(service, "GET", "/readyz")).status === 200 ? true : undefined,
        );
      }
      // B's pooled connections all died in the restart: the write needs new ones.
      await until("a write", async () => {
        const answer = await call(b, "PUT", "/v1/connections/after-restart", { integration: "cc" });
        return answer.status === 201 ? true : undefined;
      });
      // Both listen again (and so dropped their caches, which the next test relies on).
      await until("both listening", async () => ((await listeners()) === 2 ? true : undefined));
      expectAlive();
    }, 60_000);

    it("while stopped: serve cached tokens, 503 storage_error with Retry-After for the rest", async () => {
      const token = await tokenOf(a, "steady");
      expect(await tokenOf(b, "steady")).toBe(token);
      await cluster.stop();
      for (const service of [a, b]) {
        expect(await tokenOf(service, "steady")).toBe(token);
        expectStorageError(await call(service, "GET", "/v1/connections/uncached/token"));
        expectStorageError(
          await call(service, "PUT", "/v1/connections/new", { integration: "cc" }),
        );
        expectStorageError(await call(service, "GET", "/v1/connections"));
        expectStorageError(await call(service, "POST", "/v1/connections/steady/refresh"));
        const ready = await call(service, "GET", "/readyz");
        expect(ready.status).toBe(503);
        expect(ready.json.status).toBe("unavailable");
        expect((await call(service, "GET", "/healthz")).status).toBe(200);
        expect((await call(service, "GET", "/metrics")).status).toBe(200);
      }
      // For a while: longer than the API keys are trusted without a look at the
      // database (5 s), with the scheduler failing its ticks meanwhile.
      const end = performance.now() + 7000;
      while (performance.now() < end) {
        expect(await tokenOf(a, "steady")).toBe(token);
        expect(await tokenOf(b, "steady")).toBe(token);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      // Each tick that failed is a warning in the log (no connection to name: none was read).
      for (const service of [a, b]) {
        expect(service.output()).toMatch(
          /"code":"scheduler_failed","errorCode":"storage_error".*"msg":"the scheduler could not look for due connections \(\d+ in a row\)/,
        );
      }
      expectAlive();
    }, 60_000);

    it("when it is back: readiness, writes, the scheduler and changes between processes resume", async () => {
      await cluster.start();
      for (const service of [a, b]) {
        await until("ready", async () =>
          (await call(service, "GET", "/readyz")).status === 200 ? true : undefined,
        );
      }
      // A write, and the scheduler obtaining the new connection's first token.
      await until("a write", async () => {
        const answer = await call(a, "PUT", "/v1/connections/late", { integration: "cc" });
        return answer.status === 201 ? true : undefined;
      });
      await until("the scheduler", async () => {
        const { json } = await call(b, "GET", "/v1/connections/late/events");
        const events = json.events as Array<{ trigger: string; outcome: string }>;
        return events.some((e) => e.trigger === "schedule" && e.outcome === "success")
          ? true
          : undefined;
      });
      // A refresh in one process reaches the other's cache, both ways, more than once
      // (the first could be the catch-up after re-subscribing; the next are NOTIFY).
      for (const [from, to] of [
        [a, b],
        [a, b],
        [b, a],
      ] as const) {
        const refreshed = await until("a refresh", async () => {
          const answer = await call(from, "POST", "/v1/connections/steady/refresh");
          return answer.status === 200 ? answer : undefined;
        });
        expect(refreshed.json.status).toBe("active");
        const fresh = await tokenOf(from, "steady");
        await until("the other process sees it", async () =>
          (await tokenOf(to, "steady")) === fresh ? true : undefined,
        );
      }
      expectAlive();
    }, 60_000);

    it("catches up on a change made while one process was not listening", async () => {
      const seen = await tokenOf(b, "steady");
      expect(await tokenOf(a, "steady")).toBe(seen);
      admin = new pg.Client({ connectionString: cluster.url });
      admin.on("error", () => undefined);
      await admin.connect();
      try {
        // B loses every connection, its LISTEN too, and cannot make new ones.
        await admin.query("alter role b_user nologin");
        await admin.query(
          "select pg_terminate_backend(pid) from pg_stat_activity where usename = 'b_user'",
        );
        await until("B's listener gone", async () => {
          const { rows } = await admin.query(
            "select count(*)::int as n from pg_stat_activity where usename = 'b_user'",
          );
          return rows[0].n === 0 ? true : undefined;
        });
        const refreshed = await call(a, "POST", "/v1/connections/steady/refresh");
        expect(refreshed.status).toBe(200);
        const fresh = await tokenOf(a, "steady");
        expect(fresh).not.toBe(seen);
        // B did not hear of it: it still serves what it holds.
        expect(await tokenOf(b, "steady")).toBe(seen);
        await admin.query("alter role b_user login");
      } finally {
        await admin.query("alter role b_user login").catch(() => undefined);
        await admin.end();
      }
      // B listens again and drops its cache: what it missed is caught up.
      await until("B catches up", async () =>
        (await tokenOf(b, "steady")) !== seen ? true : undefined,
      );
      expect(await tokenOf(b, "steady")).toBe(await tokenOf(a, "steady"));
      expectAlive();
    }, 60_000);

    it("a process told to stop while the database is away shuts down cleanly", async () => {
      await cluster.stop();
      await b.stop(); // SIGTERM: requests and refreshes in flight finish, then exit
      expect(b.exited, b.output()).toBe("exit code 0");
      expect(a.exited, a.output()).toBeUndefined();
    }, 60_000);
  },
);
