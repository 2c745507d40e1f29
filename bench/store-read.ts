/**
 * What reading a connection and its integration back from the store costs, with the
 * documents parsed by their schemas (store/documents.ts): 10,000 reads of one
 * connection (token included) and of one integration, on SQLite and, when a server
 * answers, PostgreSQL. Not part of `npm run bench`: a quick check after a change to
 * the store's read path.
 *
 *   node --import tsx bench/store-read.ts [reads]
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { parseConnection } from "../src/core/connection.js";
import { parseIntegration } from "../src/core/integration.js";
import { openStore } from "../src/store/open.js";
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

const dir = await mkdtemp(join(tmpdir(), "tokenwarden-bench-"));
try {
  await measure("sqlite", `sqlite:${join(dir, "bench.db")}`);
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
