import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock, openStore } from "../../src/index.js";
import { openBroker } from "../fixtures/broker.js";
import { sqliteDatabase, TEST_SECRET_KEY } from "../fixtures/databases.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { type PasswordServerFixture, startPasswordServer } from "../fixtures/password-server.js";
import { CHROMIUM_PATH, requireChromium } from "../fixtures/prerequisites.js";
import { type QuirkServer, startQuirkServer, text } from "../fixtures/quirk-server.js";
import { startTestService, type TestService } from "../fixtures/service.js";
import { caught, type LooseJson } from "../helpers.js";

/**
 * Connect links, end to end in Chromium: a new connection and the re-authorization of
 * one that needs_reauth, through oidc-provider's own login and consent pages; the
 * password form; replay, expiry, CSRF and return URLs refused where they must be.
 */
const API_KEY = "connect-e2e-key-0123456789";
const chromiumCheck = requireChromium();

describe.skipIf(chromiumCheck.skip)("connect links", { timeout: 60_000 }, () => {
  let op: OidcFixture;
  let pw: PasswordServerFixture;
  let app: QuirkServer;

  /** As a refused refresh leaves a connection (the token server said invalid_grant). */
  async function markNeedsReauth(id: string): Promise<void> {
    const store = await openStore({ database: service.database.url, secretKey: TEST_SECRET_KEY });
    try {
      await store.updateState(id, { status: "needs_reauth", nextRefreshAt: null }, Date.now());
    } finally {
      await store.close();
    }
  }
  let service: TestService;
  let browser: Browser;

  beforeAll(async () => {
    op = await startOidcProvider({ redirectUris: ["http://127.0.0.1/oauth/callback"] });
    pw = await startPasswordServer({
      clients: [{ clientId: "pw-app", clientSecret: "pw-secret-value", grants: ["password"] }],
      users: [{ username: "ann", password: "ann-password-value" }],
    });
    // The integrating product's own page, where a finished connect link returns.
    app = await startQuirkServer();
    app.on("/done", (_req, res) => text(res, 200, "text/html", "<h1>Back in the app</h1>"));
    service = await startTestService({
      apiKey: API_KEY,
      env: { TOKENWARDEN_CONNECT_RETURN_ORIGINS: app.origin },
      serve: { webhooks: false },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
    });
    await service.tw.putIntegration({
      key: "oidc",
      displayName: "OIDC Test Server",
      grantType: "authorization_code",
      authorizationUrl: op.authorizationUrl,
      tokenUrl: op.tokenUrl,
      clientId: BASIC_CLIENT_ID,
      clientSecret: BASIC_CLIENT_SECRET,
      scopes: ["openid", "offline_access", "api:read"],
      authorizationParams: { prompt: "consent" },
    });
    await service.tw.putIntegration({
      key: "pw",
      displayName: "Password Server",
      grantType: "password",
      tokenUrl: pw.tokenUrl,
      clientId: "pw-app",
      clientSecret: "pw-secret-value",
      clientAuth: "body",
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await service?.close();
    await op?.close();
    await pw?.close();
    await app?.close();
  });

  async function createSession(
    body: Record<string, unknown>,
  ): Promise<{ status: number; json: LooseJson }> {
    return service.api("POST", "/v1/connect-sessions", body);
  }

  /** A fresh browser profile: oidc-provider's own login and consent every time. */
  async function loginAndConsent(page: Page): Promise<void> {
    await page.waitForURL(/\/interaction\//);
    await page.locator('input[name="login"]').fill("ann");
    await page.locator('input[name="password"]').fill("any-password");
    await page.locator('button[type="submit"]').click();
    await page.waitForURL(/\/interaction\//);
    await page.locator('button[type="submit"]').click();
  }

  it("creates a new connection from a link with no key, then returns to the app", async () => {
    const created = await createSession({
      integration: "oidc",
      connectionId: "crm-ann",
      environment: "prod",
      returnUrl: `${app.origin}/done?from=connect`,
    });
    expect(created.status).toBe(201);
    expect(created.json.url).toMatch(new RegExp(`^${service.url}/connect/[A-Za-z0-9_-]{43}$`));

    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(created.json.url);
      expect(await page.locator("h1").textContent()).toBe("Connect OIDC Test Server");
      expect(await page.locator("main").textContent()).toContain(
        "openid, offline_access, api:read",
      );
      await page.getByRole("button", { name: "Connect" }).click();
      await loginAndConsent(page);
      await page.waitForURL(`${app.origin}/done**`);
      const back = new URL(page.url());
      expect(back.searchParams.get("from")).toBe("connect");
      expect(back.searchParams.get("connectionId")).toBe("crm-ann");
      expect(back.searchParams.get("status")).toBe("active");
    } finally {
      await context.close();
    }
    const connection = await service.tw.getConnection("crm-ann");
    expect(connection).toMatchObject({
      status: "active",
      environment: "prod",
      integration: "oidc",
    });

    // Replay: the link is spent, on the page and on its form alike.
    const again = await fetch(created.json.url);
    expect(again.status).toBe(404);
    expect(await again.text()).toContain("unknown, expired or already used");
  });

  it("re-authorizes a connection that needs_reauth in place", async () => {
    const before = await service.tw.getConnection("crm-ann");
    // As a refused refresh leaves it (the token server said invalid_grant).
    await markNeedsReauth("crm-ann");
    const created = await createSession({ connectionId: "crm-ann" });
    expect(created.status).toBe(201);

    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(created.json.url);
      expect(await page.locator("h1").textContent()).toBe("Reconnect OIDC Test Server");
      await page.getByRole("button", { name: "Reconnect" }).click();
      await loginAndConsent(page);
      await page.waitForURL(/\/oauth\/callback/);
      await expect
        .poll(() => page.locator("h1").textContent())
        .toBe("OAuth2 token received with success!");
    } finally {
      await context.close();
    }
    const after = await service.tw.getConnection("crm-ann");
    expect(after.status).toBe("active");
    expect(after.createdAt).toBe(before.createdAt);
    expect(Date.parse(after.lastRefreshAt as string)).toBeGreaterThan(
      Date.parse(before.lastRefreshAt as string),
    );
  });

  it("asks for a username and password for the password grant", async () => {
    const created = await createSession({ integration: "pw", connectionId: "pw-ann" });
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(created.json.url);
      await page.getByLabel("Username").fill("ann");
      await page.getByLabel("Password").fill("wrong-password");
      await page.getByRole("button", { name: "Connect" }).click();
      expect(await page.locator("h1").textContent()).toBe("The service refused these credentials");
      await page.getByRole("link", { name: "Try again" }).click();
      await page.getByLabel("Username").fill("ann");
      await page.getByLabel("Password").fill("ann-password-value");
      await page.getByRole("button", { name: "Connect" }).click();
      expect(await page.locator("h1").textContent()).toBe("Connected with success!");
      expect(await page.content()).not.toContain("ann-password-value");
    } finally {
      await context.close();
    }
    const connection = await service.tw.getConnection("pw-ann");
    expect(connection.status).toBe("active");
    expect(connection.password).toEqual({ set: true });
    expect((await service.tw.getToken("pw-ann")).accessToken).not.toBe("");
  });

  it("refuses a form posted without its page's cookie, or from another site", async () => {
    const created = await createSession({ integration: "pw", connectionId: "pw-bob" });
    const form = new URLSearchParams({ csrf: "guessed", username: "ann", password: "x" });
    const noCookie = await fetch(created.json.url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form,
    });
    expect(noCookie.status).toBe(403);
    const page = await fetch(created.json.url);
    const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())?.[1] as string;
    const crossSite = await fetch(created.json.url, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        cookie,
        origin: "http://evil.example",
      },
      body: new URLSearchParams({ csrf, username: "ann", password: "ann-password-value" }),
    });
    expect(crossSite.status).toBe(403);
    await expect(service.tw.getConnection("pw-bob")).rejects.toMatchObject({ code: "not_found" });
  });

  it("the admin page adds a webhook (secret once) and makes a connect link for a needs_reauth connection", async () => {
    await markNeedsReauth("crm-ann");
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    try {
      await page.goto(service.url);
      await page.getByLabel("API key").fill(API_KEY);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("button", { name: "Webhooks" }).click();
      const form = page.locator("#webhook-form");
      await form.getByLabel("ID").fill("ops");
      await form.getByLabel("URL").fill("https://ops.example/hooks");
      await page.getByRole("button", { name: "Save webhook" }).click();
      await expect.poll(() => page.locator("#webhook-secret").textContent()).toMatch(/whsec_/);
      await expect
        .poll(() => page.locator("#webhooks-table tbody").textContent())
        .toContain("https://ops.example/hooks");

      await page.goto(`${service.url}/#connection/crm-ann`);
      await page.getByRole("button", { name: "Connect link" }).click();
      await expect
        .poll(() => page.locator("#connect-link-url").inputValue())
        .toMatch(new RegExp(`^${service.url}/connect/[A-Za-z0-9_-]{43}$`));
      const link = await page.locator("#connect-link-url").inputValue();
      expect((await fetch(link)).status).toBe(200);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
      await service.tw.webhooks.remove("ops").catch(() => undefined);
    }
  });

  it("refuses a returnUrl outside TOKENWARDEN_CONNECT_RETURN_ORIGINS, and grants that need no person", async () => {
    for (const returnUrl of [
      "https://evil.example/done",
      `${app.origin}.evil.example/x`,
      "javascript:alert(1)",
    ]) {
      const refused = await createSession({ connectionId: "crm-ann", returnUrl });
      expect(refused.status).toBe(400);
      expect(refused.json.error.field).toBe("returnUrl");
    }
    await service.tw.putIntegration({
      key: "cc",
      grantType: "client_credentials",
      tokenUrl: op.tokenUrl,
      clientId: BASIC_CLIENT_ID,
    });
    const cc = await createSession({ integration: "cc", connectionId: "cc-1" });
    expect(cc.status).toBe(400);
    expect((await createSession({ integration: "oidc", connectionId: "crm-ann" })).status).toBe(
      409,
    );
  });
});

describe("connect sessions expire (injected clock)", () => {
  it("refuses a link after its lifetime, and once it is used", async () => {
    const db = await sqliteDatabase();
    const clock = new ManualClock(Date.now());
    const tw = await openBroker(db, { clock, webhooks: false });
    try {
      await tw.putIntegration({
        key: "oidc",
        grantType: "authorization_code",
        authorizationUrl: "https://auth.example/authorize",
        tokenUrl: "https://auth.example/token",
        clientId: "app",
      });
      const session = await tw.connectSessions.create(
        { integration: "oidc", connectionId: "c1", expiresInSeconds: 60 },
        { returnOrigins: [] },
      );
      expect((await tw.connectSessions.describe(session.token)).connectionId).toBe("c1");
      clock.advance(60_000);
      expect((await caught(() => tw.connectSessions.describe(session.token))).code).toBe(
        "not_found",
      );
      expect(
        (await caught(() => tw.connectSessions.begin(session.token, "http://x/cb"))).code,
      ).toBe("not_found");

      const fresh = await tw.connectSessions.create(
        { integration: "oidc", connectionId: "c2" },
        { returnOrigins: [] },
      );
      const started = await tw.connectSessions.begin(
        fresh.token,
        "http://127.0.0.1/oauth/callback",
      );
      expect(new URL(started.url).searchParams.get("code_challenge_method")).toBe("S256");
      expect((await caught(() => tw.connectSessions.begin(fresh.token, "http://x/cb"))).code).toBe(
        "not_found",
      );
    } finally {
      await tw.close();
      await db.drop();
    }
  });
});
