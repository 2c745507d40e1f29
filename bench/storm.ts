import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { request } from "undici";
import { fmt, SECRET_KEY, type Started, startProcess, startServer, tempSqlite } from "./lib.js";
import { CpuMeter, cpuMicros, mib, rssBytes } from "./proc.js";
import { type Kind, prepare, type StormPlan, seed, seedRate } from "./seed.js";
import type { WorkerOptions, WorkerStat } from "./storm-worker.js";

const ADMIN_URL =
  process.env.TOKENWARDEN_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const BUCKET_MS = 10_000;

export interface StormOptions {
  kind: Kind;
  count: number;
  windowMs: number;
  /** How long the token endpoint takes to answer (ms). */
  delayMs: number;
  /** The integration's refreshAheadSeconds, in ms. */
  leadMs: number;
  tokenEndpointConcurrency: number;
}

/** What was seen in one 10-s bucket of the storm, from the 1-s polls. */
interface Bucket {
  peakInFlight: number;
  maxRss: number;
  workerCpuUs: number;
  tokenServerCpuUs: number;
  expiredUnrefreshed: number | undefined;
}

/**
 * A storm of expiries: N connections whose refresh windows all open within a window,
 * against a token endpoint answering in `delayMs`, with the library's scheduler in a
 * worker process. Per 10-s bucket: refreshes/s achieved against those needed, the most
 * requests in flight at the token endpoint, CPU and memory of the worker, tokens
 * expired unrefreshed (read from the database).
 */
export async function storm(o: StormOptions): Promise<string> {
  const tokenServer = await startServer("token-server", "3600", String(o.delayMs));
  const db = await createDatabase(o.kind);
  try {
    await prepare(db.url, SECRET_KEY, `${tokenServer.url}/token`, o.leadMs);
    const rate = await seedRate(db.url, o.kind, SECRET_KEY);
    // Time to seed (with a third to spare) and to start, before the first window opens.
    const startAt = Date.now() + Math.ceil((o.count / rate) * 1.3 * 1000) + 8000;
    const plan: StormPlan = { count: o.count, startAt, windowMs: o.windowMs, leadMs: o.leadMs };
    const seedStarted = performance.now();
    await seed(db.url, o.kind, SECRET_KEY, plan);
    const seedSeconds = (performance.now() - seedStarted) / 1000;

    const workerOptions: WorkerOptions = {
      database: db.url,
      secretKey: SECRET_KEY,
      plan,
      tokenEndpointConcurrency: o.tokenEndpointConcurrency,
      readsPerSecond: 10,
    };
    const t0 = performance.now();
    const worker = await startProcess(["bench/storm-worker.ts", JSON.stringify(workerOptions)], {
      // BENCH_STORM_WORKER_ARGS: more node flags for the worker (`--cpu-prof` to profile it).
      nodeArgs: [
        ...(process.env.BENCH_STORM_WORKER_ARGS?.split(" ").filter((a) => a !== "") ?? []),
        "--import",
        "tsx",
      ],
      ready: /^ready (\d+)/,
    });
    const startMs = performance.now() - t0;
    const lateStart = Math.max(0, Date.now() - startAt);
    let last: WorkerStat | undefined;
    createInterface({ input: worker.child.stdout! }).on("line", (line) => {
      const [tag, json] = [line.slice(0, line.indexOf(" ")), line.slice(line.indexOf(" ") + 1)];
      if (tag === "STAT" || tag === "FINAL") last = JSON.parse(json) as WorkerStat;
    });
    try {
      await sleepUntil(startAt);
      const pgBefore = await db.pgStats();
      const workerPid = worker.child.pid!;
      const meter = new CpuMeter([workerPid, tokenServer.child.pid!]);
      const buckets: Bucket[] = [];
      const end = startAt + o.windowMs + o.leadMs + 5000;
      let worstExpired = 0;
      let cpuMark = [cpuMicros(workerPid), cpuMicros(tokenServer.child.pid!)];
      for (let tick = startAt + 1000; ; tick += 1000) {
        await sleepUntil(tick);
        const index = Math.floor((tick - startAt - 1) / BUCKET_MS);
        buckets[index] ??= {
          peakInFlight: 0,
          maxRss: 0,
          workerCpuUs: 0,
          tokenServerCpuUs: 0,
          expiredUnrefreshed: undefined,
        };
        const bucket = buckets[index];
        const counts = await tokenServerCounts(tokenServer);
        bucket.peakInFlight = Math.max(bucket.peakInFlight, counts.peak);
        bucket.maxRss = Math.max(bucket.maxRss, rssBytes(workerPid));
        const cpuNow = [cpuMicros(workerPid), cpuMicros(tokenServer.child.pid!)];
        bucket.workerCpuUs += (cpuNow[0] as number) - (cpuMark[0] as number);
        bucket.tokenServerCpuUs += (cpuNow[1] as number) - (cpuMark[1] as number);
        cpuMark = cpuNow;
        const done = (last?.refreshed ?? 0) >= o.count;
        if ((tick - startAt) % BUCKET_MS === 0 || done || tick >= end) {
          bucket.expiredUnrefreshed = await db.expiredUnrefreshed();
          worstExpired = Math.max(worstExpired, bucket.expiredUnrefreshed);
        }
        if (done || tick >= end) break;
      }
      const [workerCpu, tokenServerCpu] = meter.read();
      await worker.stop();
      await sleep(1500); // PostgreSQL's statistics are flushed about once a second
      const pgAfter = await db.pgStats();
      const final = last;
      if (final === undefined) throw new Error("the storm worker reported nothing");
      return report(o, {
        final,
        buckets,
        seedSeconds,
        startMs,
        lateStart,
        worstExpired,
        expiredAtEnd: await db.expiredUnrefreshed(),
        cpuPerRefreshUs: (workerCpu?.cpuUs ?? 0) / Math.max(1, final.refreshed + final.again),
        tokenServerCores: tokenServerCpu?.cores ?? 0,
        pg: pgBefore === undefined || pgAfter === undefined ? undefined : diff(pgBefore, pgAfter),
        diskBytes: await db.sizeBytes(),
      });
    } finally {
      await worker.stop();
    }
  } finally {
    await tokenServer.stop();
    await db.drop();
  }
}

interface Measured {
  final: WorkerStat;
  buckets: Bucket[];
  seedSeconds: number;
  startMs: number;
  lateStart: number;
  worstExpired: number;
  expiredAtEnd: number;
  cpuPerRefreshUs: number;
  tokenServerCores: number;
  pg: Record<string, number> | undefined;
  diskBytes: number;
}

function report(o: StormOptions, m: Measured): string {
  const { final } = m;
  const needed = (o.count / o.windowMs) * 1000;
  const refreshes = final.refreshed + final.again;
  const perRefresh = (n: number) => (n / Math.max(1, refreshes)).toFixed(2);
  const peakInFlight = Math.max(0, ...m.buckets.map((b) => b.peakInFlight));
  const maxRss = Math.max(0, ...m.buckets.map((b) => b.maxRss));
  const rates = m.buckets.map((_, i) => (final.buckets[i] ?? 0) / (BUCKET_MS / 1000));
  const inWindow = rates.slice(0, Math.max(1, Math.floor(o.windowMs / BUCKET_MS)));
  const met = (ok: boolean) => (ok ? "met" : "**missed**");
  const worstLeft =
    final.worstLeftMs === null ? "n/a" : `${(final.worstLeftMs / 1000).toFixed(1)} s`;
  const lines = [
    `### 4. Storm of expiries: ${fmt(o.count)} connections on ${o.kind === "sqlite" ? "SQLite" : "PostgreSQL"}`,
    "",
    `Every token's refresh window opens within the same ${o.windowMs / 1000} s (evenly; each expires ${o.leadMs / 1000} s after its window opens), against a token endpoint answering in ${o.delayMs} ms. The library with its scheduler (at most 512 renewals at once) and \`tokenEndpointConcurrency: ${o.tokenEndpointConcurrency}\` runs in a worker process; it also reads ${10} tokens a second among those due. Seeding took ${m.seedSeconds.toFixed(1)} s; start-up to ready ${m.startMs.toFixed(0)} ms${m.lateStart > 0 ? ` (**started ${(m.lateStart / 1000).toFixed(1)} s after the first window opened**)` : ""}. Database size at the end: ${mib(m.diskBytes)}.`,
    "",
    "| figure | value | goal / baseline |",
    "|---|---:|---|",
    `| connections refreshed | ${fmt(final.refreshed)} of ${fmt(o.count)} | all |`,
    `| refreshes/s, 10-s buckets in the window: lowest, median, highest | ${Math.min(...inWindow).toFixed(0)}, ${medianOf(inWindow).toFixed(0)}, ${Math.max(...inWindow).toFixed(0)} | ${needed.toFixed(0)}/s needed |`,
    `| tokens expired unrefreshed, worst seen | ${fmt(m.worstExpired)} (at the end: ${fmt(m.expiredAtEnd)}) | 0: ${met(m.worstExpired === 0 && m.expiredAtEnd === 0)} |`,
    `| expired tokens served | ${final.servedExpired} of ${fmt(final.reads)} reads (${final.readErrors} failed) | 0: ${met(final.servedExpired === 0 && final.readErrors === 0)} |`,
    `| worst time a token had left when refreshed | ${worstLeft} | above 0 |`,
    `| refreshes started by a read (trigger \`demand\`), not the scheduler | ${fmt(final.demand)} | |`,
    `| refresh failures | ${fmt(final.failures)} | 0 |`,
    `| most token requests in flight | ${peakInFlight} | ${Math.ceil((needed * o.delayMs) / 1000)} needed (rate × latency) |`,
    `| worker CPU per refresh | ${m.cpuPerRefreshUs.toFixed(0)} µs | |`,
    `| worker resident memory, most | ${mib(maxRss)} | |`,
    `| statements per refresh (counted in the driver) | ${perRefresh(final.statements)} | |`,
  ];
  if (m.pg !== undefined) {
    lines.push(
      `| PostgreSQL per refresh: commits, tuples inserted, updated, fetched | ${perRefresh(m.pg.xact_commit ?? 0)}, ${perRefresh(m.pg.tup_inserted ?? 0)}, ${perRefresh(m.pg.tup_updated ?? 0)}, ${perRefresh(m.pg.tup_fetched ?? 0)} | |`,
    );
  }
  lines.push(
    `| token endpoint's CPU use | ${m.tokenServerCores.toFixed(2)} cores | well under 1: not the bound |`,
    "",
    "| from start (s) | needed/s | refreshed/s | most in flight | worker CPU (cores) | worker RSS | expired unrefreshed |",
    "|---:|---:|---:|---:|---:|---:|---:|",
  );
  m.buckets.forEach((b, i) => {
    const from = i * BUCKET_MS;
    const due = from < o.windowMs ? needed : 0;
    lines.push(
      `| ${from / 1000}–${(from + BUCKET_MS) / 1000} | ${due.toFixed(0)} | ${(rates[i] ?? 0).toFixed(0)} | ${b.peakInFlight} | ${(b.workerCpuUs / (BUCKET_MS * 1000)).toFixed(2)} | ${mib(b.maxRss)} | ${b.expiredUnrefreshed ?? ""} |`,
    );
  });
  lines.push("");
  return lines.join("\n");
}

function medianOf(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sleepUntil = (at: number) => sleep(Math.max(0, at - Date.now()));

async function tokenServerCounts(server: Started): Promise<{ issued: number; peak: number }> {
  const res = await request(`${server.url}/count?reset=1`);
  return (await res.body.json()) as { issued: number; peak: number };
}

function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(b).map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));
}

interface Db {
  url: string;
  expiredUnrefreshed(): Promise<number>;
  pgStats(): Promise<Record<string, number> | undefined>;
  sizeBytes(): Promise<number>;
  drop(): Promise<void>;
}

/** A fresh database, with the reads the report needs (not counted as the worker's). */
async function createDatabase(kind: Kind): Promise<Db> {
  if (kind === "sqlite") {
    const url = await tempSqlite("storm");
    const path = url.slice("sqlite:".length);
    const { stat, rm } = await import("node:fs/promises");
    const { dirname } = await import("node:path");
    return {
      url,
      expiredUnrefreshed: async () => {
        const reader = new BetterSqlite3(path, { readonly: true });
        try {
          const row = reader
            .prepare(
              "select count(*) as n from tw_connections where status = 'active' and expires_at < ?",
            )
            .get(Date.now()) as { n: number };
          return row.n;
        } finally {
          reader.close();
        }
      },
      pgStats: async () => undefined,
      sizeBytes: async () => {
        let total = 0;
        for (const suffix of ["", "-wal", "-shm"])
          total += await stat(`${path}${suffix}`).then(
            (s) => s.size,
            () => 0,
          );
        return total;
      },
      drop: () => rm(dirname(path), { recursive: true, force: true }),
    };
  }
  const name = `tw_storm_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const reader = new pg.Client({ connectionString: url.toString() });
  await reader.connect();
  return {
    url: url.toString(),
    expiredUnrefreshed: async () => {
      const r = await reader.query(
        "select count(*)::int as n from tw_connections where status = 'active' and expires_at < $1",
        [Date.now()],
      );
      return (r.rows[0] as { n: number }).n;
    },
    pgStats: async () => {
      const r = await admin.query(
        "select xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted from pg_stat_database where datname = $1",
        [name],
      );
      const row = r.rows[0] as Record<string, string>;
      return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v)]));
    },
    sizeBytes: async () => {
      const r = await admin.query("select pg_database_size($1)::int8 as n", [name]);
      return Number((r.rows[0] as { n: string }).n);
    },
    drop: async () => {
      await reader.end();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}
