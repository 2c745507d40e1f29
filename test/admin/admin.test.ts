import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openBroker } from "../fixtures/broker.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { startTestService, type TestService } from "../fixtures/service.js";

/**
 * The admin page in Debian's Chromium, end to end, at a desktop size and a phone's
 * (390 × 844): sign in, the empty states, an integration form that follows its grant,
 * a connection whose buttons follow its status, Authorize through oidc-provider's own
 * login and consent pages in the popup, Refresh now, an event recorded by another
 * Tokenwarden instance on the same database arriving live (the stream is cluster-wide),
 * Revoke. No page may scroll sideways.
 *
 * Screenshots are written only when asked: TOKENWARDEN_SCREENSHOTS=1 (docs/screenshots).
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const UNDER_CI = process.env.CI === "true";
const SHOTS = process.env.TOKENWARDEN_SCREENSHOTS === "1" ? "docs/screenshots" : undefined;
const API_KEY = "admin-e2e-key-0123456789";
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

if (!HAVE_CHROMIUM && !UNDER_CI) {
  console.warn(
    `test/admin: skipped, no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`,
  );
}

// Under CI a missing browser is a failure, not a skip.
it.runIf(!HAVE_CHROMIUM && UNDER_CI)(`needs Chromium at ${CHROMIUM} under CI=true`, () => {
  throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH`);
});

async function shot(page: Page, name: string): Promise<void> {
  if (SHOTS !== undefined) await page.screenshot({ path: `${SHOTS}/${name}.png` });
}

/** The page does not scroll sideways. */
async function expectNoSidewaysScroll(page: Page): Promise<void> {
  // A string, evaluated in the page: the test's own type check has no DOM library.
  const { scrollWidth, clientWidth } = (await page.evaluate(
    "({ scrollWidth: document.scrollingElement.scrollWidth, clientWidth: document.scrollingElement.clientWidth })",
  )) as { scrollWidth: number; clientWidth: number };
  expect(scrollWidth).toBeLessThanOrEqual(clientWidth);
}

async function signIn(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel("API key").fill(API_KEY);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect
    .poll(() => page.getByRole("heading", { name: "Connections" }).isVisible())
    .toBe(true);
}

describe.skipIf(!HAVE_CHROMIUM)("the admin page", () => {
  let op: OidcFixture;
  let service: TestService;
  let browser: Browser;
  let page: Page;
  /** Uncaught errors in the page: there must be none. */
  const pageErrors: string[] = [];

  const badge = () => page.locator("#facts .badge").textContent();
  const enabled = (name: string) => page.getByRole("button", { name, exact: true }).isEnabled();
  const announced = () => page.locator("#announce").textContent();

  beforeAll(async () => {
    op = await startOidcProvider({ redirectUris: ["http://127.0.0.1/oauth/callback"] });
    service = await startTestService({ apiKey: API_KEY });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
      ],
    });
    page = await browser.newPage({ viewport: DESKTOP });
    page.on("pageerror", (error) => pageErrors.push(error.message));
    if (SHOTS !== undefined) await mkdir(SHOTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await service?.close();
    await op?.close();
  });

  it("hides the navigation while signed out, and refuses a wrong key", async () => {
    await page.goto(service.url);
    await expect.poll(() => page.getByLabel("API key").isVisible()).toBe(true);
    expect(await page.locator("#nav").isVisible()).toBe(false);
    expect(await page.getByRole("button", { name: "Sign out" }).isVisible()).toBe(false);
    await expectNoSidewaysScroll(page);
    await shot(page, "sign-in");
    await page.getByLabel("API key").fill("wrong-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect
      .poll(() => page.locator("#api-key-error").textContent())
      .toBe("This API key is not valid.");
    expect(await page.locator("#nav").isVisible()).toBe(false);
    await page.getByLabel("API key").fill(API_KEY);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect
      .poll(() => page.getByRole("heading", { name: "Connections" }).isVisible())
      .toBe(true);
    expect(await page.locator("#nav").isVisible()).toBe(true);
    // The key is in the session, never in the address.
    expect(page.url()).not.toContain(API_KEY);
    expect(await page.evaluate("sessionStorage.getItem('tokenwarden.apiKey')")).toBe(API_KEY);
  });

  it("says what to do first when there is nothing yet", async () => {
    const connections = page.locator("#connections-table tbody");
    await expect
      .poll(() => connections.textContent())
      .toContain("No connections yet. Create an integration first");
    expect(await connections.getByRole("button", { name: "New integration" }).isVisible()).toBe(
      true,
    );
    await expectNoSidewaysScroll(page);
    await shot(page, "empty-connections");

    // A new connection with no integration to use says so, and cannot be saved.
    await page.locator("#new-connection").click();
    const form = page.locator("#form-dialog");
    await expect.poll(() => form.textContent()).toContain("Create an integration first");
    expect(await form.getByRole("button", { name: "Save" }).isDisabled()).toBe(true);
    // Its button leads to the integration form.
    await form.getByRole("button", { name: "New integration" }).click();
    await expect.poll(() => page.locator("#form-title").textContent()).toBe("New integration");
    await form.getByRole("button", { name: "Cancel" }).click();
    await expect.poll(() => page.locator("#integrations").isVisible()).toBe(true);
    await expect
      .poll(() => page.locator("#integrations-table tbody").textContent())
      .toContain("No integrations yet.");
    expect(
      await page
        .locator("#integrations-table tbody")
        .getByRole("button", { name: "New integration" })
        .isVisible(),
    ).toBe(true);
  });

  it("shows an integration only the fields its grant uses, and each field's error next to it", async () => {
    await page.locator("#new-integration").click();
    const form = page.locator("#form-dialog");
    const field = (name: string) => form.locator(`[data-field="${name}"]`);
    // Left out, the grant is authorization_code only with an MCP server: the form says so.
    expect(await form.getByLabel("Grant Type").inputValue()).toBe("");
    expect(await field("grantType").textContent()).toContain("mcpServerUrl");
    expect(await field("authorizationUrl").isVisible()).toBe(true);
    await form.getByLabel("Grant Type").selectOption("client_credentials");
    for (const name of ["authorizationUrl", "pkce", "authorizationParams"]) {
      expect(await field(name).isHidden()).toBe(true);
    }
    expect(await field("tokenUrl").isVisible()).toBe(true);
    await form.getByLabel("Grant Type").selectOption("authorization_code");
    expect(await field("authorizationUrl").isVisible()).toBe(true);

    await form.locator("#f-key").fill("oidc");
    await form.locator("#f-authorizationUrl").fill(op.authorizationUrl);
    await form.getByLabel("Token URL").fill("not a url");
    await form.getByLabel("Client ID").fill(BASIC_CLIENT_ID);
    await form.getByLabel("Client Secret").fill(BASIC_CLIENT_SECRET);
    await form.getByLabel("Scopes").fill("openid api:read");
    await form.getByRole("button", { name: "Save" }).click();
    const tokenUrlError = form.locator('[data-field="tokenUrl"] .error');
    await expect.poll(() => tokenUrlError.textContent()).toBe("must be an absolute http(s) URL");
    expect(await form.getByLabel("Token URL").getAttribute("aria-invalid")).toBe("true");
    await shot(page, "integration-form");
    await form.getByLabel("Token URL").fill(op.tokenUrl);
    await form.getByLabel("Revocation URL").fill(op.revocationUrl);
    await form.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => form.isVisible()).toBe(false);
    const row = page.locator('#integrations-table tr[data-key="oidc"]');
    await expect.poll(() => row.textContent()).toContain("authorization_code");
    expect(await row.textContent()).toContain("set");
    expect(await page.content()).not.toContain(BASIC_CLIENT_SECRET);
    await expectNoSidewaysScroll(page);
  });

  it("creates a connection whose Refresh and Revoke wait for a token, then authorizes it in a popup", async () => {
    await page.getByRole("button", { name: "Connections" }).click();
    // The one in the bar (the empty table offers another).
    await page.locator("#new-connection").click();
    const form = page.locator("#form-dialog");
    // Fields of other grants are not asked for.
    expect(await form.locator('[data-field="username"]').isHidden()).toBe(true);
    expect(await form.locator('[data-field="refreshToken"]').isHidden()).toBe(true);
    await form.getByLabel(/^ID\b/).fill("oidc-prod");
    await form.getByLabel("Integration").selectOption("oidc");
    await form.getByLabel("Environment").fill("prod");
    await form.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => page.locator("#detail-title").textContent()).toBe("oidc-prod");
    await expect.poll(badge).toBe("pending authorization");
    expect(await enabled("Refresh now")).toBe(false);
    expect(await enabled("Revoke")).toBe(false);
    expect(await enabled("Authorize")).toBe(true);
    expect(await page.locator("#redirect-uri").inputValue()).toBe(`${service.url}/oauth/callback`);
    await expectNoSidewaysScroll(page);

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
    if (SHOTS !== undefined) await popup.screenshot({ path: `${SHOTS}/authorize-popup.png` });

    await expect.poll(badge, { timeout: 10_000 }).toBe("active");
    expect(await page.locator("#detail-message").textContent()).toBe(
      "OAuth2 token received with success!",
    );
    expect(await announced()).toBe("oidc-prod is authorized.");
    expect(await enabled("Refresh now")).toBe(true);
    expect(await enabled("Revoke")).toBe(true);
    await expect.poll(() => popup.isClosed(), { timeout: 10_000 }).toBe(true);
    await expect
      .poll(() => page.locator("#events-table tbody tr").first().textContent())
      .toContain("authorize");
    await shot(page, "connection-detail");
  });

  it("Refresh now adds an event as it happens", async () => {
    const rows = page.locator("#events-table tbody tr");
    const before = await rows.count();
    await page.getByRole("button", { name: "Refresh now" }).click();
    await expect.poll(() => rows.count()).toBe(before + 1);
    const first = await rows.first().textContent();
    expect(first).toContain("manual");
    expect(first).toContain("refresh");
    expect(first).toContain("success");
  });

  it("shows live an event recorded by another Tokenwarden instance on the same database", async () => {
    // Another process of the cluster: its in-memory events never reach this service.
    const other = await openBroker(service.database);
    try {
      await other.refresh("oidc-prod");
      const [event] = await other.listEvents("oidc-prod", { limit: 1 });
      expect(event?.action).toBe("refresh");
      const row = page.locator(`#events-table tr[data-event="${event?.id}"]`);
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
      expect(await page.locator("#events-table tbody tr").first().getAttribute("data-event")).toBe(
        String(event?.id),
      );
    } finally {
      await other.close();
    }
  });

  it("Revoke (confirmed) turns the connection revoked, with the buttons that need a token off", async () => {
    const rows = page.locator("#events-table tbody tr");
    await page.getByRole("button", { name: "Revoke" }).click();
    const dialog = page.locator("#confirm-dialog");
    await expect.poll(() => dialog.isVisible()).toBe(true);
    await dialog.getByRole("button", { name: "Yes" }).click();
    await expect.poll(badge).toBe("revoked");
    await expect.poll(() => rows.first().textContent()).toContain("revoke");
    expect(await announced()).toBe("oidc-prod is revoked.");
    expect(await enabled("Refresh now")).toBe(false);
    expect(await enabled("Revoke")).toBe(false);
    expect(await enabled("Authorize")).toBe(true);

    // A page change clears the status line.
    await page.getByRole("button", { name: "Back to connections" }).click();
    await expect.poll(announced).toBe("");
    const status = page.locator("#filters select[name=status]");
    await status.selectOption("revoked");
    await expect.poll(() => page.locator("#connections-table tbody tr").count()).toBe(1);
    // No match: say so, with the way back.
    await status.selectOption("error");
    const table = page.locator("#connections-table tbody");
    await expect.poll(() => table.textContent()).toContain("No connections match these filters.");
    await table.getByRole("button", { name: "Clear filters" }).click();
    await expect.poll(() => page.locator("#connections-table tr[data-id]").count()).toBe(1);
    await shot(page, "connections");
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
    expect(await badge()).toBe("revoked");
  });

  it("fits a phone (390 px): no sideways scroll, a wrapping header, Save in sight", async () => {
    const phone = await browser.newPage({ viewport: PHONE, isMobile: true, hasTouch: true });
    phone.on("pageerror", (error) => pageErrors.push(error.message));
    try {
      await phone.goto(service.url);
      await expect.poll(() => phone.getByLabel("API key").isVisible()).toBe(true);
      expect(await phone.locator("#nav").isVisible()).toBe(false);
      await expectNoSidewaysScroll(phone);
      await shot(phone, "phone-sign-in");
      await signIn(phone, service.url);

      // The header holds its navigation: Sign out sits on the dark bar, inside the screen.
      const header = await phone.locator("header.top").boundingBox();
      const signOut = await phone.getByRole("button", { name: "Sign out" }).boundingBox();
      expect(header).not.toBeNull();
      expect(signOut).not.toBeNull();
      if (header === null || signOut === null) return;
      expect(header.width).toBeLessThanOrEqual(PHONE.width);
      expect(signOut.x + signOut.width).toBeLessThanOrEqual(PHONE.width);
      expect(signOut.y + signOut.height).toBeLessThanOrEqual(header.y + header.height);

      await expect.poll(() => phone.locator("#connections-table tr[data-id]").count()).toBe(1);
      await expectNoSidewaysScroll(phone);
      await shot(phone, "phone-connections");

      await phone.getByRole("button", { name: "Integrations" }).click();
      await expect.poll(() => phone.locator("#integrations").isVisible()).toBe(true);
      await expectNoSidewaysScroll(phone);

      // The longest form: its Save button is on screen without scrolling.
      await phone.locator("#new-integration").click();
      const save = phone.locator("#form-dialog").getByRole("button", { name: "Save" });
      await expect.poll(() => save.isVisible()).toBe(true);
      const box = await save.boundingBox();
      expect(box).not.toBeNull();
      if (box !== null) expect(box.y + box.height).toBeLessThanOrEqual(PHONE.height);
      await expectNoSidewaysScroll(phone);
      await shot(phone, "phone-integration-form");
      await phone.locator("#form-dialog").getByRole("button", { name: "Cancel" }).click();

      await phone.goto(`${service.url}/#connection/oidc-prod`);
      await expect.poll(() => phone.locator("#detail-title").textContent()).toBe("oidc-prod");
      await expect.poll(() => phone.locator("#events-table tr[data-event]").count()).not.toBe(0);
      await expectNoSidewaysScroll(phone);
      await shot(phone, "phone-connection-detail");

      await phone.getByRole("button", { name: "Sign out" }).click();
      await expect.poll(() => phone.getByLabel("API key").isVisible()).toBe(true);
      expect(await phone.locator("#nav").isVisible()).toBe(false);
    } finally {
      await phone.close();
    }
  });

  it("a new integration can start from a preset: its fields filled, its notes shown", async () => {
    await page.goto(service.url);
    await page.getByRole("button", { name: "Integrations" }).click();
    await page.locator("#new-integration").click();
    const form = page.locator("#form-dialog");
    await expect.poll(() => form.locator("#preset-start option").count()).toBeGreaterThan(40);
    await form.getByLabel("Start from a preset").selectOption("github");
    expect(await form.getByLabel("Token URL").inputValue()).toBe(
      "https://github.com/login/oauth/access_token",
    );
    expect(await form.getByLabel("Client Auth").inputValue()).toBe("body");
    expect(await form.locator("#preset-notes").textContent()).toContain("form-encoded");
    await form.locator("#f-key").fill("gh");
    await form.getByLabel("Client ID").fill("gh-client");
    await form.getByLabel("Client Secret").fill("gh-secret-value");
    await form.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => form.isVisible()).toBe(false);
    const saved = await service.tw.getIntegration("gh");
    expect(saved).toMatchObject({ preset: "github", clientAuth: "body", session: "none" });
    await service.tw.deleteIntegration("gh");
  });

  it("raised no error in the page", () => {
    expect(pageErrors).toEqual([]);
  });
});
