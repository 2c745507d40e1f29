import { randomBytes } from "node:crypto";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { request } from "undici";
import { openStore } from "../src/index.js";
import { parseMasterKey, Sealer } from "../src/store/crypto.js";
import {
  api,
  fmt,
  SECRET_KEY,
  type Started,
  startServer,
  startTokenwarden,
  tempSqlite,
  tokensIssued,
} from "./lib.js";

const ADMIN_URL =
  process.env.TOKENWARDEN_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const HOUR = 3600_000;

/**
 * N connections whose tokens expire spread over the next hour, against a local token
 * endpoint: refreshes per second sustained, scheduler lag, tokens left to expire,
 * memory, and start-up time beside an empty database's.
 */
export async function scale(
  kind: "sqlite" | "postgres",
  count: number,
  measureMs: number,
): Promise<string> {
  const as = await startServer("token-server", "3600");
  let database: string;
  let drop = async () => undefined as undefined;
  if (kind === "sqlite") {
    database = await tempSqlite("scale");
  } else {
    const name = `tw_scale_${randomBytes(5).toString("hex")}`;
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(ADMIN_URL);
    url.pathname = `/${name}`;
    database = url.toString();
    drop = async () => {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    };
  }
  try {
    const emptyStart = await timeStart(kind === "sqlite" ? await tempSqlite("empty") : database);
    const seedStarted = performance.now();
    await seed(database, kind, count, `${as.url}/token`);
    const seedSeconds = (performance.now() - seedStarted) / 1000;

    const t0 = performance.now();
    const tw = await startTokenwarden(database);
    await waitReady(tw);
    const startMs = performance.now() - t0;
    try {
      const before = await tokensIssued(as);
      let maxLag = 0;
      let maxRss = 0;
      const until = performance.now() + measureMs;
      while (performance.now() < until) {
        await new Promise((r) => setTimeout(r, 1000));
        const metrics = await (await request(`${tw.url}/metrics`)).body.text();
        maxLag = Math.max(maxLag, metricValue(metrics, "tokenwarden_scheduler_lag_seconds"));
        maxRss = Math.max(
          maxRss,
          metricValue(metrics, "tokenwarden_process_process_resident_memory_bytes"),
        );
      }
      const refreshed = (await tokensIssued(as)) - before;
      const expired = await countExpired(database, kind);
      const dueRate = count / 3600;
      return [
        `### 4. Scale: ${fmt(count)} connections on ${kind === "sqlite" ? "SQLite" : "PostgreSQL"}`,
        "",
        `Tokens expiring spread evenly over the next hour (refresh window 60 s), a local token endpoint, measured for ${measureMs / 1000} s after start-up. Seeding took ${seedSeconds.toFixed(1)} s (not part of the figures).`,
        "",
        "| figure | value | baseline / goal |",
        "|---|---:|---|",
        `| refreshes per second sustained | ${(refreshed / (measureMs / 1000)).toFixed(1)} | ${dueRate.toFixed(1)}/s come due (N / 3600 s), from about 3 s after start-up |`,
        `| scheduler lag, worst seen | ${(maxLag * 1000).toFixed(0)} ms | goal under 1 s: ${maxLag < 1 ? "met" : "missed"} |`,
        `| active connections whose token expired unrefreshed | ${expired} | goal 0: ${expired === 0 ? "met" : "missed"} |`,
        `| resident memory, worst seen | ${(maxRss / 1024 / 1024).toFixed(0)} MiB | |`,
        `| start-up to ready | ${startMs.toFixed(0)} ms | ${emptyStart.toFixed(0)} ms with an empty database |`,
        "",
      ].join("\n");
    } finally {
      await tw.stop();
    }
  } finally {
    await as.stop();
    await drop();
  }
}

async function timeStart(database: string): Promise<number> {
  const t0 = performance.now();
  const tw = await startTokenwarden(database);
  await waitReady(tw);
  const elapsed = performance.now() - t0;
  await tw.stop();
  return elapsed;
}

async function waitReady(tw: Started): Promise<void> {
  for (;;) {
    const res = await request(`${tw.url}/readyz`);
    await res.body.dump();
    if (res.statusCode === 200) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

function metricValue(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(" ")[1]);
}

/** Rows written directly, in batches, with each token sealed as the store would. */
async function seed(
  database: string,
  kind: "sqlite" | "postgres",
  count: number,
  tokenUrl: string,
): Promise<void> {
  // Opening the store creates the schema; the integration goes in through the API of the library.
  const store = await openStore({ database, secretKey: SECRET_KEY });
  const { parseIntegration } = await import("../src/core/index.js");
  await store.putIntegration(
    parseIntegration({
      key: "scale",
      grantType: "client_credentials",
      tokenUrl,
      clientId: "c",
      refreshAheadSeconds: 60,
    }),
    Date.now(),
  );
  await store.close();
  const sealer = new Sealer([parseMasterKey(SECRET_KEY)]);
  const document = JSON.stringify({
    id: "",
    integration: "scale",
    environment: "",
    parameters: {},
  });
  // Row i's token expires at t0 + 60 s + i/N of an hour: its refresh window opens at
  // t0 + i/N of an hour, so from t0 on, N/3600 connections come due every second.
  const rowFor = (i: number, t0: number) => {
    const id = `c${i}`;
    const expiresAt = t0 + 60_000 + Math.floor((i / count) * HOUR);
    const token = {
      accessToken: `seed-${i}`,
      tokenType: "Bearer",
      issuedAt: expiresAt - HOUR,
      expiresAt,
      raw: {},
    };
    return [
      id,
      "scale",
      "",
      document.replace('"id":""', `"id":"${id}"`),
      "active",
      sealer.seal(JSON.stringify(token), `connection:${id}:token`),
      1,
      expiresAt,
      expiresAt - 60_000 + Math.floor(Math.random() * 6000),
      t0,
      t0,
    ] as const;
  };
  const columns =
    "id, integration, environment, document, status, sealed_token, token_version, expires_at, next_refresh_at, created_at, updated_at";
  const batch = 1000;
  let insert: (from: number, to: number, t0: number) => Promise<void>;
  let close: () => Promise<void>;
  if (kind === "sqlite") {
    const db = new BetterSqlite3(database.slice("sqlite:".length));
    const statement = db.prepare(
      `insert into tw_connections (${columns}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const many = db.transaction((from: number, to: number, t0: number) => {
      for (let i = from; i < to; i++) statement.run(...rowFor(i, t0));
    });
    insert = async (from, to, t0) => {
      for (let i = from; i < to; i += batch) many(i, Math.min(to, i + batch), t0);
    };
    close = async () => {
      db.close();
    };
  } else {
    const client = new pg.Client({ connectionString: database });
    await client.connect();
    insert = async (from, to, t0) => {
      for (let i = from; i < to; i += batch) {
        const rows = Array.from({ length: Math.min(batch, to - i) }, (_, k) => rowFor(i + k, t0));
        const values = rows.map(
          (_, r) => `(${Array.from({ length: 11 }, (_, c) => `$${r * 11 + c + 1}`).join(",")})`,
        );
        await client.query(
          `insert into tw_connections (${columns}) values ${values.join(",")}`,
          rows.flat(),
        );
      }
    };
    close = async () => {
      await client.query("analyze tw_connections");
      await client.end();
    };
  }
  // The rows due in the first 10 minutes go in last, with a start time predicted from
  // the speed of the first part, so that none is already overdue when the service
  // starts (a seeding backlog is not the scheduler's lag).
  const split = Math.ceil(count / 6);
  const startA = performance.now();
  await insert(split, count, Date.now());
  const perRow = (performance.now() - startA) / Math.max(1, count - split);
  await insert(0, split, Math.round(Date.now() + split * perRow + 3000));
  await close();
}

async function countExpired(database: string, kind: "sqlite" | "postgres"): Promise<number> {
  const now = Date.now();
  if (kind === "sqlite") {
    const db = new BetterSqlite3(database.slice("sqlite:".length), { readonly: true });
    const row = db
      .prepare(
        "select count(*) as n from tw_connections where status = 'active' and expires_at < ?",
      )
      .get(now) as { n: number };
    db.close();
    return row.n;
  }
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  const result = await client.query(
    "select count(*)::int as n from tw_connections where status = 'active' and expires_at < $1",
    [now],
  );
  await client.end();
  return (result.rows[0] as { n: number }).n;
}

export { api };
