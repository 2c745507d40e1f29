/**
 * Connections `c0` … `c<N-1>` whose tokens all come due within one window: the refresh
 * window of `c<i>` opens at `startAt + i/N × windowMs` and its token expires `leadMs`
 * later. Rows are written directly, in batches, each token sealed as the store would
 * (the schema comes from `openStore`, the integration through the library).
 */
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { parseIntegration } from "../src/core/index.js";
import { openStore } from "../src/index.js";
import { parseMasterKey, Sealer } from "../src/store/crypto.js";

export interface StormPlan {
  count: number;
  startAt: number;
  windowMs: number;
  leadMs: number;
}

export const windowOpensAt = (plan: StormPlan, i: number) =>
  plan.startAt + Math.floor((i * plan.windowMs) / plan.count);
export const expiresAt = (plan: StormPlan, i: number) => windowOpensAt(plan, i) + plan.leadMs;

export type Kind = "sqlite" | "postgres";

/** Creates the schema and the one integration every connection uses. */
export async function prepare(
  database: string,
  secretKey: string,
  tokenUrl: string,
  leadMs: number,
): Promise<void> {
  const store = await openStore({ database, secretKey });
  await store.putIntegration(
    parseIntegration({
      key: "storm",
      grantType: "client_credentials",
      tokenUrl,
      clientId: "storm",
      refreshAheadSeconds: leadMs / 1000,
    }),
    Date.now(),
  );
  await store.close();
}

const COLUMNS = [
  "id",
  "integration",
  "environment",
  "document",
  "status",
  "sealed_token",
  "token_version",
  "expires_at",
  "next_refresh_at",
  "created_at",
  "updated_at",
] as const;
type Row = [string, string, string, string, string, string, number, number, number, number, number];

/** A writer of rows in batches, for either database. */
interface Writer {
  write(rows: Row[]): Promise<void>;
  run(sql: string): Promise<void>;
  close(): Promise<void>;
}

async function writer(database: string, kind: Kind): Promise<Writer> {
  if (kind === "sqlite") {
    const db = new BetterSqlite3(database.slice("sqlite:".length));
    const insert = db.prepare(
      `insert into tw_connections (${COLUMNS.join(", ")}) values (${COLUMNS.map(() => "?").join(", ")})`,
    );
    const many = db.transaction((rows: Row[]) => {
      for (const r of rows) insert.run(...r);
    });
    return {
      write: async (rows) => many(rows),
      run: async (sql) => {
        db.exec(sql);
      },
      close: async () => {
        db.close();
      },
    };
  }
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  // One array per column, unnested: one statement and 11 parameters per batch.
  const types = [
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "int",
    "int8",
    "int8",
    "int8",
    "int8",
  ];
  const sql = `insert into tw_connections (${COLUMNS.join(", ")}) select * from unnest(${types.map((t, c) => `$${c + 1}::${t}[]`).join(", ")})`;
  return {
    write: async (rows) => {
      await client.query(
        sql,
        COLUMNS.map((_, c) => rows.map((r) => r[c])),
      );
    },
    run: async (statement) => void (await client.query(statement)),
    close: () => client.end(),
  };
}

const BATCH = 5000;

/**
 * Seeds the plan's rows. The plan's `startAt` must leave time for the seeding itself
 * and for the service to start: `seedRate` measures how fast rows go in, to choose it.
 */
export async function seed(
  database: string,
  kind: Kind,
  secretKey: string,
  plan: StormPlan,
): Promise<void> {
  const sealer = new Sealer([parseMasterKey(secretKey)]);
  const out = await writer(database, kind);
  try {
    const now = Date.now();
    for (let from = 0; from < plan.count; from += BATCH) {
      const rows: Row[] = [];
      for (let i = from; i < Math.min(plan.count, from + BATCH); i++)
        rows.push(rowFor(sealer, `c${i}`, expiresAt(plan, i), plan.leadMs, now));
      await out.write(rows);
    }
    if (kind === "postgres") await out.run("analyze tw_connections");
  } finally {
    await out.close();
  }
}

/** Rows per second `seed` manages here: writes a sample and takes it out again. */
export async function seedRate(database: string, kind: Kind, secretKey: string): Promise<number> {
  const sealer = new Sealer([parseMasterKey(secretKey)]);
  const out = await writer(database, kind);
  try {
    const t0 = performance.now();
    const now = Date.now();
    for (let b = 0; b < 2; b++) {
      const rows = Array.from({ length: BATCH }, (_, k) =>
        rowFor(sealer, `calibrate-${b}-${k}`, now + 86_400_000, 60_000, now),
      );
      await out.write(rows);
    }
    const rate = (2 * BATCH) / ((performance.now() - t0) / 1000);
    await out.run("delete from tw_connections where id like 'calibrate-%'");
    return rate;
  } finally {
    await out.close();
  }
}

function rowFor(sealer: Sealer, id: string, expires: number, leadMs: number, now: number): Row {
  const token = {
    accessToken: `seed-${id}`,
    tokenType: "Bearer",
    issuedAt: expires - 3600_000,
    expiresAt: expires,
    raw: {},
  };
  const document = JSON.stringify({ id, integration: "storm", environment: "", parameters: {} });
  // The library's own schedule: the window opens `lead` before expiry, plus a jitter
  // of up to a tenth of the lead (core/state.ts nextRefreshAt).
  const next = expires - leadMs + Math.floor(Math.random() * leadMs * 0.1);
  const sealed = sealer.seal(JSON.stringify(token), `connection:${id}:token`);
  return [id, "storm", "", document, "active", sealed, 1, expires, next, now, now];
}
