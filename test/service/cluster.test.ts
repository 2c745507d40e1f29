import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresDatabase, type TestDatabase } from "../fixtures/databases.js";
import { loginAndConsent } from "../fixtures/interaction.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { requirePostgres } from "../fixtures/prerequisites.js";
import { startTestService, type TestService } from "../fixtures/service.js";

/** Two `serve` processes' worth of service on one PostgreSQL database. */
const API_KEY = "cluster-api-key-0123456789";
const postgres = await requirePostgres();
let op: OidcFixture;
let db: TestDatabase;
let a: TestService;
let b: TestService;

/** Both services use the one database; the test drops it. */
const serve = () => startTestService({ apiKey: API_KEY, database: db });

const call = (service: TestService, method: string, path: string, body?: unknown) =>
  service.api(method, path, body);

beforeAll(async () => {
  op = await startOidcProvider({
    accessTokenTtlSeconds: 2,
    redirectUris: ["http://127.0.0.1/oauth/callback"],
  });
  db = await postgresDatabase();
  a = await serve();
  b = await serve();
  const integration = {
    tokenUrl: op.tokenUrl,
    authorizationUrl: op.authorizationUrl,
    revocationUrl: op.revocationUrl,
    clientId: BASIC_CLIENT_ID,
    clientSecret: BASIC_CLIENT_SECRET,
  };
  await call(a, "PUT", "/v1/integrations/cc", {
    ...integration,
    grantType: "client_credentials",
    scopes: ["api:read"],
  });
  await call(a, "PUT", "/v1/integrations/web", {
    ...integration,
    grantType: "authorization_code",
    scopes: ["openid"],
  });
});
afterAll(async () => {
  await a.close();
  await b.close();
  await op.close();
  await db.drop();
});

describe.skipIf(postgres.skip)("two services on one PostgreSQL", () => {
  it("share one refresh of a stale token", async () => {
    await call(a, "PUT", "/v1/connections/shared", { integration: "cc" });
    const first = await call(b, "GET", "/v1/connections/shared/token");
    await sleep(Math.max(0, Date.parse(first.json.expiresAt) - 1000 - Date.now() + 50)); // stale now
    const before = op.tokenRequests;
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        call(i % 2 === 0 ? a : b, "GET", "/v1/connections/shared/token"),
      ),
    );
    expect(op.tokenRequests - before).toBe(1);
    const tokens = new Set(answers.map((r) => r.json.accessToken));
    expect(tokens.size).toBe(1);
    expect(tokens.has(first.json.accessToken)).toBe(false);
  });

  it("see each other's revokes at once", async () => {
    op.setAccessTokenTtl(300);
    await call(a, "PUT", "/v1/connections/web-c", { integration: "web" });
    const started = await request(`${a.url}/v1/connections/web-c/authorize`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    await started.body.dump();
    const callback = await loginAndConsent(String(started.headers.location));
    const page = await request(`${a.url}${callback.pathname}${callback.search}`);
    expect(await page.body.text()).toContain("OAuth2 token received with success!");
    // b caches the token...
    const onB = await call(b, "GET", "/v1/connections/web-c/token");
    expect(onB.status).toBe(200);
    // ...a revokes it; b's cache is told by NOTIFY, well before the token's expiry.
    expect((await call(a, "POST", "/v1/connections/web-c/revoke")).json.status).toBe("revoked");
    let after = await call(b, "GET", "/v1/connections/web-c/token");
    for (let i = 0; i < 40 && after.status === 200; i++) {
      await sleep(25);
      after = await call(b, "GET", "/v1/connections/web-c/token");
    }
    expect(after.status).toBe(409);
    expect(after.json.error.code).toBe("needs_reauth");
  });
});
