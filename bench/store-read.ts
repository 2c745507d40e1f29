/**
 * What reading a connection and its integration back from the store costs, with the
 * documents parsed by their schemas (store/documents.ts). First the decoding alone, in
 * the same run and alternating so the machine's load hits both alike: rows as stored,
 * decoded with a bare cast (`JSON.parse(...) as Integration`, as before) and with the
 * schemas. Then 10,000 whole reads of one connection (token included) and of one
 * integration, on SQLite and, when a server answers, PostgreSQL. Not part of
 * `npm run bench`: a quick check after a change to the store's read path.
 *
 *   node --import tsx bench/store-read.ts [reads]
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kysely } from "kysely";
import pg from "pg";
import { type Connection, type ErrorSummary, parseConnection } from "../src/core/connection.js";
import { type Integration, parseIntegration } from "../src/core/integration.js";
import { type SecretValues, withSecrets } from "../src/core/secrets.js";
import type { TokenSet } from "../src/core/token-set.js";
import { summaryFromRow, tokenFromRow } from "../src/store/connection-rows.js";
import { parseMasterKey, Sealer } from "../src/store/crypto.js";
import { IntegrationMemo } from "../src/store/integration-memo.js";
import { openStore } from "../src/store/open.js";
import type { Database } from "../src/store/schema.js";
import { integrationFromColumns, sealingContext } from "../src/store/sealed-rows.js";
import { sqliteDialect } from "../src/store/sqlite-driver.js";
import type { Store } from "../src/store/store.js";

const READS = Number(process.argv[2] ?? 10_000);
const ADMIN_URL =
  process.env.TOKENWARDEN_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SECRET_KEY = randomBytes(32).toString("base64");

async function fill(store: Store): Promise<void> {
  // An integration with most of its fields set, so its schema has work to do.
  await store.putIntegration(
    parseIntegration({
      key: "bench",
      grantType: "authorization_code",
      authorizationUrl: "https://{tenant}.example.com/oauth/authorize",
      tokenUrl: "https://{tenant}.example.com/oauth/token",
      revocationUrl: "https://{tenant}.example.com/oauth/revoke",
      clientId: "bench-client",
      clientSecret: "bench-secret",
      scopes: ["read", "write", "offline_access"],
      parameters: ["tenant"],
      apiBaseUrl: "https://{tenant}.example.com/api",
      allowedApiOrigins: ["https://files.example.com"],
      tokenHeaders: { "X-Client": "tokenwarden" },
      expiredBodyPattern: "token (has )?expired",
      responseMap: { accessToken: "data.access_token" },
    }),
    0,
  );
  await store.putConnection(
    parseConnection({
      id: "bench-1",
      integration: "bench",
      parameters: { tenant: "acme" },
      refreshToken: "bench-refresh",
    }),
    0,
    {
      status: "active",
      expiresAt: null,
      nextRefreshAt: null,
      lastRefreshAt: null,
      failureCount: 0,
      lastError: null,
      scope: null,
      tokenVersion: 0,
    },
  );
  await store.updateState(
    "bench-1",
    {
      token: {
        accessToken: "a".repeat(800),
        tokenType: "Bearer",
        refreshToken: "r".repeat(64),
        scope: "read write",
        issuedAt: Date.now(),
        expiresAt: Date.now() + 3_600_000,
        raw: { access_token: "a".repeat(800), token_type: "Bearer", expires_in: 3600 },
        httpStatus: 200,
      },
      lastError: { code: "network_error", message: "connect ECONNREFUSED", at: Date.now() },
    },
    Date.now(),
  );
}

async function time(label: string, reads: number, read: () => Promise<unknown>): Promise<string> {
  for (let i = 0; i < 500; i++) await read(); // warm the JIT and the statement cache
  const started = performance.now();
  for (let i = 0; i < reads; i++) await read();
  const ms = performance.now() - started;
  return `${label}: ${reads} reads in ${ms.toFixed(0)} ms (${((ms * 1000) / reads).toFixed(1)} µs each)`;
}

async function measure(name: string, database: string): Promise<void> {
  const store = await openStore({ database, secretKey: SECRET_KEY });
  try {
    await fill(store);
    console.log(`${name}`);
    console.log(`  ${await time("getConnection", READS, () => store.getConnection("bench-1"))}`);
    console.log(`  ${await time("getIntegration", READS, () => store.getIntegration("bench"))}`);
  } finally {
    await store.close();
  }
}

/** The decoding as it was before the schemas: a cast on JSON.parse. */
function castIntegration(row: Parameters<typeof integrationFromColumns>[0], sealer: Sealer) {
  const document = JSON.parse(row.document) as Integration;
  const secrets =
    row.sealed_secrets === null
      ? {}
      : (JSON.parse(
          sealer.open(row.sealed_secrets, sealingContext.integrationSecrets(row.key)),
        ) as SecretValues);
  return withSecrets(document, secrets);
}

function castConnection(row: Parameters<typeof summaryFromRow>[0], sealer: Sealer) {
  const document = JSON.parse(row.document) as Connection;
  const secrets =
    row.sealed_secrets === null
      ? {}
      : (JSON.parse(
          sealer.open(row.sealed_secrets, sealingContext.connectionSecrets(row.id)),
        ) as Partial<Connection>);
  const token =
    row.sealed_token === null
      ? undefined
      : (JSON.parse(
          sealer.open(row.sealed_token, sealingContext.connectionToken(row.id)),
        ) as TokenSet);
  const lastError = row.last_error === null ? null : (JSON.parse(row.last_error) as ErrorSummary);
  return { connection: { ...document, ...secrets }, token, lastError };
}

/** µs per call of each of two functions, alternating rounds; the median round shown. */
function compare(
  rounds: number,
  each: number,
  a: () => unknown,
  b: () => unknown,
): [number, number] {
  const times: [number[], number[]] = [[], []];
  for (let round = 0; round < rounds; round++) {
    for (const [i, fn] of [a, b].entries()) {
      const started = performance.now();
      for (let n = 0; n < each; n++) fn();
      times[i as 0 | 1].push(((performance.now() - started) * 1000) / each);
    }
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
  return [median(times[0]), median(times[1])];
}

async function measureDecoding(path: string): Promise<void> {
  const db = new Kysely<Database>({ dialect: await sqliteDialect(path) });
  const sealer = new Sealer([parseMasterKey(SECRET_KEY)]);
  try {
    const integration = await db
      .selectFrom("tw_integrations")
      .selectAll()
      .executeTakeFirstOrThrow();
    const connection = await db.selectFrom("tw_connections").selectAll().executeTakeFirstOrThrow();
    console.log("decoding alone (same rows, alternating rounds of 2,000, median of 9)");
    const [castI, schemaI] = compare(
      9,
      2000,
      () => castIntegration(integration, sealer),
      () => integrationFromColumns(integration, sealer),
    );
    const memo = new IntegrationMemo(sealer);
    const [, memoI] = compare(
      9,
      2000,
      () => castIntegration(integration, sealer),
      () => memo.read(integration),
    );
    console.log(
      `  integration: cast ${castI.toFixed(1)} µs, schema ${schemaI.toFixed(1)} µs, schema once per row (the store's memo) ${memoI.toFixed(1)} µs`,
    );
    const [castC, schemaC] = compare(
      9,
      2000,
      () => castConnection(connection, sealer),
      () => ({ ...summaryFromRow(connection, sealer), token: tokenFromRow(connection, sealer) }),
    );
    console.log(
      `  connection with token: cast ${castC.toFixed(1)} µs, schema ${schemaC.toFixed(1)} µs`,
    );
  } finally {
    await db.destroy();
  }
}

const dir = await mkdtemp(join(tmpdir(), "tokenwarden-bench-"));
try {
  await measure("sqlite", `sqlite:${join(dir, "bench.db")}`);
  await measureDecoding(join(dir, "bench.db"));
} finally {
  await rm(dir, { recursive: true, force: true });
}

const name = `tw_bench_${randomBytes(5).toString("hex")}`;
const admin = new pg.Client({ connectionString: ADMIN_URL });
const reachable = await admin.connect().then(
  () => true,
  () => false,
);
if (reachable) {
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  try {
    await measure("postgres", url.toString());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
} else {
  console.log("postgres: no server answers, skipped");
}
