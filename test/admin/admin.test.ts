import { mkdir } from "node:fs/promises";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveSettings } from "../../src/config/settings.js";
import { type RunningService, startService } from "../../src/service/serve.js";
import { sqliteDatabase, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { freePort } from "../fixtures/ports.js";

/**
 * The admin page in Debian's Chromium, end to end: sign in, create an integration and
 * a connection, Authorize through oidc-provider's own login and consent pages in the
 * popup, see the connection turn active, Refresh now, Revoke.
 */
const API_KEY = "admin-e2e-key-0123456789";
const SHOTS = "docs/screenshots";
let op: OidcFixture;
let db: TestDatabase;
let service: RunningService;
let browser: Browser;
let page: Page;
/** Uncaught errors in the page: there must be none. */
const pageErrors: string[] = [];

beforeAll(async () => {
  op = await startOidcProvider({ redirectUris: ["http://127.0.0.1/oauth/callback"] });
  db = await sqliteDatabase();
  const settings = resolveSettings(
    { database: db.url, port: await freePort() },
    { TOKENWARDEN_SECRET_KEY: TEST_SECRET_KEY, TOKENWARDEN_API_KEYS: API_KEY },
  );
  service = await startService(settings, { logger: false, scheduler: false });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await mkdir(SHOTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await service?.close();
  await op?.close();
  await db?.drop();
});

describe("the admin page", () => {
  it("signs in with an API key, refusing a wrong one", async () => {
    await page.goto(service.url);
    await expect.poll(() => page.getByLabel("API key").isVisible()).toBe(true);
    await page.screenshot({ path: `${SHOTS}/sign-in.png` });
    await page.getByLabel("API key").fill("wrong-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect
      .poll(() => page.locator("#api-key-error").textContent())
      .toBe("This API key is not valid.");
    await page.getByLabel("API key").fill(API_KEY);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect
      .poll(() => page.getByRole("heading", { name: "Connections" }).isVisible())
      .toBe(true);
    // The key is in the session, never in the address.
    expect(page.url()).not.toContain(API_KEY);
    expect(await page.evaluate("sessionStorage.getItem('tokenwarden.apiKey')")).toBe(API_KEY);
  });

  it("creates an integration, showing a field's error next to it", async () => {
    await page.getByRole("button", { name: "Integrations" }).click();
    await page.getByRole("button", { name: "New integration" }).click();
    const form = page.locator("#form-dialog");
    await form.getByLabel("Key").fill("oidc");
    await form.getByLabel("Grant Type").selectOption("authorization_code");
    await form.getByLabel("Authorization URL").fill(op.authorizationUrl);
    await form.getByLabel("Token URL").fill("not a url");
    await form.getByLabel("Client ID").fill(BASIC_CLIENT_ID);
    await form.getByLabel("Client Secret").fill(BASIC_CLIENT_SECRET);
    await form.getByLabel("Scopes").fill("openid api:read");
    await form.getByRole("button", { name: "Save" }).click();
    const tokenUrlError = form.locator('[data-field="tokenUrl"] .error');
    await expect.poll(() => tokenUrlError.textContent()).toBe("must be an absolute http(s) URL");
    expect(await form.getByLabel("Token URL").getAttribute("aria-invalid")).toBe("true");
    await page.screenshot({ path: `${SHOTS}/integration-form.png` });
    await form.getByLabel("Token URL").fill(op.tokenUrl);
    await form.getByLabel("Revocation URL").fill(op.revocationUrl);
    await form.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => form.isVisible()).toBe(false);
    const row = page.locator('#integrations-table tr[data-key="oidc"]');
    await expect.poll(() => row.textContent()).toContain("authorization_code");
    expect(await row.textContent()).toContain("set");
    expect(await page.content()).not.toContain(BASIC_CLIENT_SECRET);
  });

  it("creates a connection, authorizes it in a popup, and sees it turn active without a reload", async () => {
    await page.getByRole("button", { name: "Connections" }).click();
    await page.getByRole("button", { name: "New connection" }).click();
    const form = page.locator("#form-dialog");
    await form.getByLabel(/^ID\b/).fill("oidc-prod");
    await form.getByLabel("Integration").selectOption("oidc");
    await form.getByLabel("Environment").fill("prod");
    await form.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => page.locator("#detail-title").textContent()).toBe("oidc-prod");
    await expect
      .poll(() => page.locator("#facts .badge").textContent())
      .toBe("pending authorization");
    expect(await page.locator("#redirect-uri").inputValue()).toBe(`${service.url}/oauth/callback`);

    const popupPromise = page.waitForEvent("popup");
    await page.getByRole("button", { name: "Authorize" }).click();
    const popup = await popupPromise;
    // oidc-provider's own login page, then its consent page.
    await popup.waitForURL(/\/interaction\//);
    await popup.locator('input[name="login"]').fill("ann");
    await popup.locator('input[name="password"]').fill("any-password");
    await popup.locator('button[type="submit"]').click();
    await popup.waitForURL(/\/interaction\//);
    await popup.locator('button[type="submit"]').click();
    await popup.waitForURL(/\/oauth\/callback/);
    await expect
      .poll(() => popup.locator("h1").textContent())
      .toBe("OAuth2 token received with success!");
    await popup.screenshot({ path: `${SHOTS}/authorize-popup.png` });

    await expect
      .poll(() => page.locator("#facts .badge").textContent(), { timeout: 10_000 })
      .toBe("active");
    expect(await page.locator("#detail-message").textContent()).toBe(
      "OAuth2 token received with success!",
    );
    await expect.poll(() => popup.isClosed(), { timeout: 10_000 }).toBe(true);
    await expect
      .poll(() => page.locator("#events-table tbody tr").first().textContent())
      .toContain("authorize");
    await page.screenshot({ path: `${SHOTS}/connection-detail.png` });
  });

  it("Refresh now adds an event as it happens; Revoke (confirmed) turns the connection revoked", async () => {
    const rows = page.locator("#events-table tbody tr");
    const before = await rows.count();
    await page.getByRole("button", { name: "Refresh now" }).click();
    await expect.poll(() => rows.count()).toBe(before + 1);
    const first = await rows.first().textContent();
    expect(first).toContain("manual");
    expect(first).toContain("refresh");
    expect(first).toContain("success");

    await page.getByRole("button", { name: "Revoke" }).click();
    const dialog = page.locator("#confirm-dialog");
    await expect.poll(() => dialog.isVisible()).toBe(true);
    await dialog.getByRole("button", { name: "Yes" }).click();
    await expect.poll(() => page.locator("#facts .badge").textContent()).toBe("revoked");
    await expect.poll(() => rows.first().textContent()).toContain("revoke");

    await page.getByRole("button", { name: "Back to connections" }).click();
    await page.locator("#filters select[name=status]").selectOption("revoked");
    await expect.poll(() => page.locator("#connections-table tbody tr").count()).toBe(1);
    await page.locator("#filters select[name=status]").selectOption("");
    await page.screenshot({ path: `${SHOTS}/connections.png` });
  });

  it("a denial in the popup shows why", async () => {
    await page.goto(`${service.url}/#connection/oidc-prod`);
    await expect.poll(() => page.locator("#detail-title").textContent()).toBe("oidc-prod");
    const popupPromise = page.waitForEvent("popup");
    await page.getByRole("button", { name: "Authorize" }).click();
    const popup = await popupPromise;
    // The provider remembers the login from the first authorization: only consent is asked.
    const abort = popup.locator('a[href$="/abort"]');
    await expect.poll(() => abort.isVisible(), { timeout: 10_000 }).toBe(true);
    await abort.click();
    await popup.waitForURL(/\/oauth\/callback/);
    await expect
      .poll(() => page.locator("#detail-message").textContent())
      .toContain("access_denied");
    expect(await page.locator("#facts .badge").textContent()).toBe("revoked");
  });

  it("raised no error in the page", () => {
    expect(pageErrors).toEqual([]);
  });
});
