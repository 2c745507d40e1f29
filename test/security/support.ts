import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import pg from "pg";
import { request } from "undici";
import type { Tokenwarden, TokenwardenOptions } from "../../src/broker/tokenwarden.js";
import { resolveSettings } from "../../src/config/settings.js";
import type { TokenSet } from "../../src/core/token-set.js";
import { startService } from "../../src/service/serve.js";
import { openBrokerWithStore } from "../fixtures/broker.js";
import type { TestDatabase } from "../fixtures/databases.js";
import { freePort } from "../fixtures/ports.js";
import { openRawSqlite } from "../fixtures/raw-sqlite.js";
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

/** The real service on a free port, an admin key from TOKENWARDEN_API_KEYS, no scheduler. */
export async function startTestService(db: TestDatabase, secretKey: string): Promise<TestService> {
  const port = await freePort();
  const settings = resolveSettings(
    { database: db.url, port, host: "127.0.0.1" },
    { TOKENWARDEN_SECRET_KEY: secretKey, TOKENWARDEN_API_KEYS: SERVICE_API_KEY },
  );
  const service = await startService(settings, { logger: false, scheduler: false });
  return {
    url: service.url,
    async call(method, path, body) {
      const res = await request(`${service.url}${path}`, {
        method: method as "GET",
        headers: {
          authorization: `Bearer ${SERVICE_API_KEY}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.body.text();
      let json: LooseJson;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.statusCode, text, json };
    },
    close: () => service.close(),
  };
}
