import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import pg from "pg";
import type { Tokenwarden, TokenwardenOptions } from "../../src/broker/tokenwarden.js";
import type { TokenSet } from "../../src/core/token-set.js";
import { openBrokerWithStore } from "../fixtures/broker.js";
import type { TestDatabase } from "../fixtures/databases.js";
import { openRawSqlite } from "../fixtures/raw-sqlite.js";
import { startTestService as startServiceFixture } from "../fixtures/service.js";
import type { LooseJson } from "../helpers.js";

/** A PEM pair good enough for the schema (the key is a marker we can search for at rest). */
export const CERT_PEM = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";
export function privateKeyPem(marker: string): string {
  return `-----BEGIN PRIVATE KEY-----\n${marker}\n-----END PRIVATE KEY-----\n`;
}

export function newKey(): string {
  return randomBytes(32).toString("base64");
}

export function openTw(
  db: TestDatabase,
  secretKey: string,
  options: Partial<TokenwardenOptions> = {},
): Promise<Tokenwarden> {
  return openBrokerWithStore({ database: db.url, secretKey, scheduler: false, ...options });
}

/** Runs SQL on the test database directly, as an attacker with the files (or an old version) would. */
export async function rawQuery(
  db: TestDatabase,
  text: string,
  params: unknown[] = [],
): Promise<Array<Record<string, unknown>>> {
  if (db.url.startsWith("sqlite:")) {
    const sqlite = await openRawSqlite(db.url.slice("sqlite:".length));
    try {
      return sqlite.query(text.replace(/\$\d+/g, "?"), params);
    } finally {
      sqlite.close();
    }
  }
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as Array<Record<string, unknown>>;
  } finally {
    await client.end();
  }
}

/** Everything the database holds, as text: its files for SQLite, every row for PostgreSQL. */
export async function everythingStored(db: TestDatabase): Promise<string> {
  if (db.url.startsWith("sqlite:")) {
    const parts: string[] = [];
    for (const file of db.files) {
      try {
        parts.push((await readFile(file)).toString("latin1"));
      } catch {
        // a journal that is not there
      }
    }
    return parts.join("\n");
  }
  const tables = ["tw_integrations", "tw_connections", "tw_pending_authorizations"];
  const rows = await Promise.all(tables.map((t) => rawQuery(db, `select * from ${t}`)));
  return JSON.stringify(rows);
}

export function tokenSet(overrides: Partial<TokenSet> = {}): TokenSet {
  return {
    accessToken: `at-${randomBytes(6).toString("hex")}`,
    tokenType: "Bearer",
    refreshToken: `rt-${randomBytes(6).toString("hex")}`,
    issuedAt: Date.now(),
    expiresAt: Date.now() + 3600_000,
    raw: {},
    ...overrides,
  };
}

export const SERVICE_API_KEY = "security-test-api-key-0123456789";

export interface TestService {
  url: string;
  call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; text: string; json: LooseJson }>;
  close(): Promise<void>;
}

/**
 * The real service on the test's database (which the test drops) under this master key,
 * an admin key from TOKENWARDEN_API_KEYS, no scheduler: fixtures/service.ts.
 */
export async function startTestService(db: TestDatabase, secretKey: string): Promise<TestService> {
  const service = await startServiceFixture({
    apiKey: SERVICE_API_KEY,
    database: db,
    env: { TOKENWARDEN_SECRET_KEY: secretKey },
  });
  return {
    url: service.url,
    call: (method, path, body) => service.api(method, path, body),
    close: () => service.close(),
  };
}
