import { randomBytes } from "node:crypto";
import pg from "pg";
import {
  API_KEY,
  api,
  fmt,
  ms,
  runLoad,
  type Started,
  startServer,
  startTokenwarden,
  tokensIssued,
} from "./lib.js";

const ADMIN_URL =
  process.env.TOKENWARDEN_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/**
 * A stampede of reads on one stale token: 10,000 concurrent token reads spread over 4 service processes on one PostgreSQL,
 * arriving as the token expires. Goal: exactly 1 request reaches the authorization
 * server. Also the p99 wait of the reads.
 */
export async function stampede(): Promise<string> {
  const name = `tw_bench_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  // Tokens of 20 s, and a token endpoint that takes 50 ms: a wide window for a
  // stampede, and a new token that stays good while the queued reads are answered.
  const as = await startServer("token-server", "20", "50");
  const services: Started[] = [];
  try {
    for (let i = 0; i < 4; i++) services.push(await startTokenwarden(url.toString()));
    const [first] = services as [Started];
    await api(first.url, "PUT", "/v1/integrations/storm", {
      grantType: "client_credentials",
      tokenUrl: `${as.url}/token`,
      clientId: "bench",
      refreshAheadSeconds: 0,
    });
    await api(first.url, "PUT", "/v1/connections/storm-1", { integration: "storm" });
    const token = (await api(first.url, "GET", "/v1/connections/storm-1/token")) as {
      expiresAt: string;
    };
    // Every process caches the current token first, as a running cluster would.
    for (const s of services) await api(s.url, "GET", "/v1/connections/storm-1/token");
    const before = await tokensIssued(as);
    // A caller needs 10 s of validity (the default minTtl, within half the lifetime):
    // the token goes stale 10 s before it expires.
    const staleAt = Date.parse(token.expiresAt) - 10_000;
    const perService = 2500;
    const results = await Promise.all(
      services.map((s) =>
        runLoad({
          url: `${s.url}/v1/connections/storm-1/token`,
          headers: { authorization: `Bearer ${API_KEY}` },
          connections: 500,
          requests: perService,
          burst: true,
          startAt: staleAt + 20,
        }),
      ),
    );
    const after = await tokensIssued(as);
    const all = results.reduce((n, r) => n + r.requests, 0);
    const errors = results.reduce(
      (n, r) => n + r.errors + (r.requests - (r.statuses["200"] ?? 0)),
      0,
    );
    const p99 = Math.max(...results.map((r) => r.p99));
    const p50 = Math.max(...results.map((r) => r.p50));
    return [
      "### 5. Refresh stampede",
      "",
      `${fmt(all)} token reads at once, ${fmt(perService)} on each of 4 \`serve\` processes on one PostgreSQL database, sent the moment the token went stale (tokens of 20 s, stale with 10 s left; a token endpoint taking 50 ms). Baseline: without single flight and the lease, each read would be a token request: ${fmt(all)}.`,
      "",
      "| token requests at the server | reads answered 200 | failed | p50 wait (worst process) | p99 wait (worst process) |",
      "|---:|---:|---:|---:|---:|",
      `| **${after - before}** | ${fmt(all - errors)} | ${errors} | ${ms(p50)} | ${ms(p99)} |`,
      "",
      `Goal exactly 1: ${after - before === 1 ? "met" : "missed"}. The p99 includes queueing ${fmt(perService)} requests on 500 sockets per process on a 2-core machine that also runs the load generators.`,
      "",
    ].join("\n");
  } finally {
    await Promise.all(services.map((s) => s.stop()));
    await as.stop();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}
