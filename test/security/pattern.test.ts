import { type ChildProcess, spawn } from "node:child_process";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/open.js";
import { CLI } from "../fixtures/cli.js";
import { sqliteDatabase, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import { freePort } from "../fixtures/ports.js";
import {
  ADMIN_KEY,
  type Recorder,
  type SecurityService,
  startRecorder,
  startSecurityService,
  tokenEndpoint,
} from "./harness.js";

/**
 * No input can stall the service (PRODUCT.md "Security rules" 7): an API answers
 * with exactly the body that makes a catastrophic `expiredBodyPattern` backtrack.
 * The service runs in its own process (`tokenwarden serve`), so that if it ever
 * stalled again this test would fail on a `/healthz` that does not answer, instead
 * of hanging with it.
 */
const HOSTILE_PATTERN = "^(a+)+$";
/** 64 KiB exactly: the most of a body the pattern is tried on. */
const HOSTILE_BODY = `${"a".repeat(64 * 1024 - 1)}!`;

let api: Recorder;

beforeAll(async () => {
  api = await startRecorder();
  tokenEndpoint(api);
  // The answers are spread over about a second, so the service is evaluating one while
  // /healthz is asked, again and again.
  let served = 0;
  api.on("/api/hostile", (_req, res) => {
    const delay = (served++ % 8) * 120;
    setTimeout(() => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": HOSTILE_BODY.length });
      res.end(HOSTILE_BODY);
    }, delay);
  });
  api.on("/api/expired", (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("expiredexpired");
  });
});
afterAll(async () => {
  await api.close();
});

describe("expiredBodyPattern", () => {
  let db: TestDatabase;
  let child: ChildProcess | undefined;
  let base = "";

  beforeAll(async () => {
    db = await sqliteDatabase();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, [CLI, "serve", "--port", String(port), "--log-level", "warn"], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        TOKENWARDEN_DATABASE_URL: db.url,
        TOKENWARDEN_SECRET_KEY: TEST_SECRET_KEY,
        TOKENWARDEN_API_KEYS: ADMIN_KEY,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    for (let tries = 0; ; tries++) {
      try {
        const res = await request(`${base}/healthz`);
        await res.body.text();
        if (res.statusCode === 200) break;
      } catch {
        if (tries > 100) throw new Error("tokenwarden serve did not start");
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => {
    child?.kill("SIGKILL");
    await db.drop();
  });

  const send = async (method: string, path: string, body?: unknown) => {
    const res = await request(`${base}${path}`, {
      method: method as "GET",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.statusCode, text: await res.body.text() };
  };

  it("is refused when RE2 cannot run it, naming the field", async () => {
    for (const pattern of [
      "(expired)\\1",
      "(?=expired)",
      "(?<!x)expired",
      "a{1001}",
      "x".repeat(1001),
    ]) {
      const res = await send("PUT", "/v1/integrations/refused", {
        grantType: "client_credentials",
        tokenUrl: `${api.origin}/token`,
        clientId: "app",
        expiredBodyPattern: pattern,
      });
      expect(res.status, pattern).toBe(400);
      expect(JSON.parse(res.text).error.field, pattern).toBe("expiredBodyPattern");
    }
  });

  it("runs in linear time: /healthz answers while a hostile pattern meets its worst body", async () => {
    expect(
      (
        await send("PUT", "/v1/integrations/hostile", {
          grantType: "client_credentials",
          tokenUrl: `${api.origin}/token`,
          clientId: "app",
          clientSecret: "s3cret",
          apiBaseUrl: `${api.origin}/api`,
          expiredBodyPattern: HOSTILE_PATTERN,
        })
      ).status,
    ).toBe(201);
    expect((await send("PUT", "/v1/connections/h1", { integration: "hostile" })).status).toBe(201);
    expect((await send("GET", "/v1/connections/h1/token")).status).toBe(200);

    let outstanding = 8;
    const proxied = Array.from({ length: outstanding }, async () => {
      const res = await send("GET", "/v1/proxy/h1/hostile");
      outstanding--;
      return res;
    });
    let answeredDuring = 0;
    while (outstanding > 0) {
      // A stalled event loop fails here, within seconds, rather than hanging the suite.
      const health = await request(`${base}/healthz`, { signal: AbortSignal.timeout(5000) });
      await health.body.text();
      expect(health.statusCode).toBe(200);
      if (outstanding > 0) answeredDuring++;
    }
    for (const res of await Promise.all(proxied)) {
      expect(res.status).toBe(200);
      expect(res.text).toBe(HOSTILE_BODY); // no match: the answer is handed on as it came
    }
    expect(answeredDuring).toBeGreaterThan(0);
  });
});

describe("a stored pattern RE2 refuses (from an older version)", () => {
  let tw: SecurityService & { db: TestDatabase };

  beforeAll(async () => {
    tw = await startSecurityService();
  });
  afterAll(async () => {
    await tw.close();
  });

  it("is never run: no match, and said once in the log", async () => {
    const issuedBefore = api.seen.filter((r) => r.target === "/token").length;
    // Written below the validation, as an older version could have.
    const store = await openStore({ database: tw.db.url, secretKey: TEST_SECRET_KEY });
    await store.putIntegration(
      {
        key: "legacy",
        grantType: "client_credentials",
        tokenUrl: `${api.origin}/token`,
        clientId: "app",
        apiBaseUrl: `${api.origin}/api`,
        expiredBodyPattern: "(expired)\\1",
        ...defaults(),
      },
      Date.now(),
    );
    await store.close();
    expect(
      (await tw.call("PUT", "/v1/connections/l1", { body: { integration: "legacy" } })).status,
    ).toBe(201);
    for (let i = 0; i < 3; i++) {
      const res = await tw.call("GET", "/v1/proxy/l1/expired");
      expect(res.status).toBe(200);
      expect(res.text).toBe("expiredexpired");
    }
    // A backtracking engine would have matched `expiredexpired` and refreshed: one token only.
    expect(api.seen.filter((r) => r.target === "/token").length).toBe(issuedBefore + 1);
    const said = tw
      .logs()
      .split("\n")
      .filter((line) => line.includes("expiredBodyPattern is not run"));
    expect(said).toHaveLength(1);
    expect(said[0]).toContain('"integration":"legacy"');
  });
});

/** The defaults parseIntegration would fill in, for a document written without it. */
function defaults() {
  return {
    tokenMethod: "POST" as const,
    clientAuth: "basic" as const,
    scopes: [],
    scopeSeparator: " ",
    pkce: true,
    authorizationParams: {},
    tokenParams: {},
    refreshParams: {},
    tokenHeaders: {},
    parameters: [],
    allowedApiOrigins: [],
    tokenPlacement: { in: "header" as const, name: "Authorization", template: "Bearer {token}" },
    requestParams: { headers: {}, query: {} },
    session: "auto" as const,
    fixedTtlSeconds: 3600,
    refreshAheadSeconds: 60,
    retryOn: [401, 403],
    tls: { mode: "verify" as const },
    timeoutMs: 10_000,
    responseMap: {},
  };
}
