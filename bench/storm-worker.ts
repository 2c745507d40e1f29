/**
 * The library under a storm of expiries, in its own process (`tokenwarden serve` does
 * not take `tokenEndpointConcurrency`):
 *   node --import tsx bench/storm-worker.ts '<json WorkerOptions>'
 * Opens Tokenwarden with its scheduler on the seeded database and prints, every
 * second, a `STAT {json}` line: refreshes by 10-s bucket, statements sent to the
 * database (counted in the drivers), the worst time a token had left when refreshed,
 * and the reads it made and whether any served an expired token. SIGTERM closes it.
 */
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { Tokenwarden } from "../src/index.js";
import { expiresAt, type StormPlan, windowOpensAt } from "./seed.js";

export interface WorkerOptions {
  database: string;
  secretKey: string;
  plan: StormPlan;
  tokenEndpointConcurrency: number;
  /** Token reads per second, on connections whose refresh window is open. */
  readsPerSecond: number;
}

export interface WorkerStat {
  /** Refreshes that succeeded, by 10-s bucket from the plan's start (index 0 = first 10 s). */
  buckets: number[];
  /** Connections refreshed at least once, and refreshes beyond the first of each. */
  refreshed: number;
  again: number;
  /** Refreshes a read started (trigger `demand`) rather than the scheduler, and failures. */
  demand: number;
  failures: number;
  /** Statements sent to the database since the plan's start. */
  statements: number;
  /** The least time a seeded token had left when its refresh was stored (ms; negative: late). */
  worstLeftMs: number | null;
  reads: number;
  readErrors: number;
  /** Reads that returned a token already expired. */
  servedExpired: number;
}

const options = JSON.parse(process.argv[2] ?? "{}") as WorkerOptions;
const { plan } = options;

// Every statement either driver runs passes through these (Kysely prepares each query
// once on SQLite; pg's pool queries through Client#query, transactions included).
let statements = 0;
function countCalls(proto: object, method: string): void {
  const target = proto as Record<string, (...args: unknown[]) => unknown>;
  const original = target[method];
  if (original === undefined) return;
  target[method] = function (this: unknown, ...args: unknown[]) {
    statements++;
    return original.apply(this, args);
  };
}
countCalls(pg.Client.prototype, "query");
countCalls(BetterSqlite3.prototype, "prepare");
const nodeSqlite = (() => {
  try {
    return process.getBuiltinModule?.("node:sqlite") as
      | { DatabaseSync?: { prototype: object } }
      | undefined;
  } catch {
    return undefined;
  }
})();
if (nodeSqlite?.DatabaseSync !== undefined)
  countCalls(nodeSqlite.DatabaseSync.prototype, "prepare");

const stat: WorkerStat = {
  buckets: [],
  refreshed: 0,
  again: 0,
  demand: 0,
  failures: 0,
  statements: 0,
  worstLeftMs: null,
  reads: 0,
  readErrors: 0,
  servedExpired: 0,
};
const seen = new Uint8Array(plan.count);
let statementsAtStart: number | undefined;

const tw = await Tokenwarden.open({
  database: options.database,
  secretKey: options.secretKey,
  tokenEndpointConcurrency: options.tokenEndpointConcurrency,
});
tw.on("event", (event) => {
  if (event.action !== "refresh" && event.action !== "obtain") return;
  if (event.outcome !== "success") {
    stat.failures++;
    return;
  }
  if (event.trigger === "demand") stat.demand++;
  const now = Date.now();
  const bucket = Math.floor((now - plan.startAt) / 10_000);
  if (bucket >= 0) stat.buckets[bucket] = (stat.buckets[bucket] ?? 0) + 1;
  const i = Number(event.connectionId.slice(1));
  if (!Number.isInteger(i) || i < 0 || i >= plan.count) return;
  if (seen[i] === 1) {
    stat.again++;
    return;
  }
  seen[i] = 1;
  stat.refreshed++;
  const left = expiresAt(plan, i) - now;
  stat.worstLeftMs = stat.worstLeftMs === null ? left : Math.min(stat.worstLeftMs, left);
});

/** Reads tokens as a client would, on connections whose refresh window is open now. */
async function readSome(): Promise<void> {
  const now = Date.now();
  if (now < plan.startAt) return;
  // The connections whose window opened in the last `lead`: the ones at risk.
  const last = Math.min(
    plan.count - 1,
    Math.floor(((now - plan.startAt) * plan.count) / plan.windowMs),
  );
  const first = Math.max(
    0,
    Math.floor(((now - plan.leadMs - plan.startAt) * plan.count) / plan.windowMs),
  );
  if (last < first) return;
  await Promise.all(
    Array.from({ length: options.readsPerSecond }, async () => {
      const i = first + Math.floor(Math.random() * (last - first + 1));
      if (windowOpensAt(plan, i) > now) return;
      try {
        const token = await tw.getToken(`c${i}`);
        stat.reads++;
        if (token.expiresAt !== null && Date.parse(token.expiresAt) <= Date.now())
          stat.servedExpired++;
      } catch {
        stat.readErrors++;
      }
    }),
  );
}

const report = (tag: string) => {
  if (statementsAtStart === undefined && Date.now() >= plan.startAt) statementsAtStart = statements;
  stat.statements = statements - (statementsAtStart ?? statements);
  process.stdout.write(`${tag} ${JSON.stringify(stat)}\n`);
};
const timer = setInterval(() => {
  report("STAT");
  void readSome();
}, 1000);
// The count starts at the plan's start, not at the next report.
setTimeout(
  () => {
    statementsAtStart = statements;
  },
  Math.max(0, plan.startAt - Date.now()),
).unref();

process.on("SIGTERM", () => {
  clearInterval(timer);
  void tw.close().then(() => {
    report("FINAL");
    process.exit(0);
  });
});
process.stdout.write("ready 0\n");
