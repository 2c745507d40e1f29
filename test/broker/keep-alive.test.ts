import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";
import { decide } from "../../src/core/decision.js";
import { nextRefreshAt } from "../../src/core/state.js";
import { ManualClock, parseIntegration, type Tokenwarden } from "../../src/index.js";
import { openBroker } from "../fixtures/broker.js";
import { sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { startWebhookReceiver, type WebhookReceiver } from "../fixtures/webhook-receiver.js";

/**
 * Keeping tokens alive, with an injected clock: an idle connection is refreshed every
 * `refreshAtLeastEverySeconds`; `refresh_token_expires_in` becomes the connection's
 * `refreshTokenExpiresAt`; `connection.refresh_token_expiring` fires once,
 * `refreshTokenWarningSeconds` before it.
 */
const DAY = 24 * 3600_000;
let quirk: QuirkServer;
let issued = 0;
/** Whether the token response carries a new refresh token with its lifetime. */
let rotate = true;

beforeAll(async () => {
  quirk = await startQuirkServer();
  quirk.on("/token", (_req, res) => {
    issued += 1;
    json(res, 200, {
      access_token: `at-${issued}`,
      token_type: "Bearer",
      expires_in: 3600,
      ...(rotate
        ? { refresh_token: `rt-${issued}`, refresh_token_expires_in: 30 * 24 * 3600 }
        : {}),
    });
  });
});
afterAll(async () => {
  await quirk.close();
});

it("decides a keep-alive renewal before the refresh window (pure)", () => {
  const integration = parseIntegration({
    key: "k",
    grantType: "refresh_token",
    tokenUrl: "https://auth.example/token",
    clientId: "app",
    refreshAtLeastEverySeconds: 3600 * 24,
  });
  const connection = {
    id: "c",
    integration: "k",
    environment: "",
    parameters: {},
    refreshToken: "r",
  };
  const t0 = Date.UTC(2026, 0, 1);
  const token = {
    accessToken: "a",
    tokenType: "Bearer",
    refreshToken: "r",
    issuedAt: t0,
    expiresAt: t0 + 30 * DAY,
    raw: {},
  };
  expect(nextRefreshAt(integration, connection, token, t0, () => 0)).toBe(t0 + DAY);
  const state = {
    status: "active" as const,
    expiresAt: token.expiresAt,
    nextRefreshAt: t0 + DAY,
    lastRefreshAt: t0,
    failureCount: 0,
    lastError: null,
    scope: null,
    tokenVersion: 1,
  };
  const request = { trigger: "schedule" as const, minTtlSeconds: 10 };
  expect(decide({ connection, state, token }, integration, request, t0 + DAY - 1).kind).toBe("use");
  expect(decide({ connection, state, token }, integration, request, t0 + DAY).kind).toBe("renew");
  // Without keep-alive the same idle token is left alone until its window.
  const plain = { ...integration, refreshAtLeastEverySeconds: undefined };
  expect(decide({ connection, state, token }, plain, request, t0 + DAY).kind).toBe("use");
});

let db: TestDatabase;
let receiver: WebhookReceiver;
let tw: Tokenwarden;
let clock: ManualClock;

beforeEach(async () => {
  db = await sqliteDatabase();
  receiver = await startWebhookReceiver();
  clock = new ManualClock(Date.now());
  issued = 0;
  rotate = true;
  tw = await openBroker(db, { clock, scheduler: { tickMs: 20 }, webhooks: false });
  const { webhook } = await tw.webhooks.put("ops", { url: receiver.url });
  receiver.secret = webhook.secret as string;
  await tw.putIntegration({
    key: "idle",
    grantType: "refresh_token",
    tokenUrl: quirk.url("/token"),
    clientId: "app",
    // A token valid for 10 days, but a refresh token that dies unused after two.
    fixedTtlSeconds: 10 * 24 * 3600,
    session: "fixed",
    refreshAtLeastEverySeconds: 24 * 3600,
    refreshTokenWarningSeconds: 7 * 24 * 3600,
  });
  await tw.putConnection({ id: "idle-1", integration: "idle", refreshToken: "rt-start" });
});
afterEach(async () => {
  await tw.close();
  await receiver.close();
  await db.drop();
});

it("refreshes an idle connection every refreshAtLeastEverySeconds", async () => {
  await expect.poll(() => issued, { timeout: 10_000 }).toBe(1);
  const first = await tw.getConnection("idle-1");
  expect(Date.parse(first.nextRefreshAt as string)).toBe(
    Date.parse(first.lastRefreshAt as string) + DAY,
  );

  clock.advance(DAY);
  await expect.poll(() => issued, { timeout: 10_000 }).toBe(2);
  await expect
    .poll(async () => (await tw.getConnection("idle-1")).lastRefreshAt, { timeout: 10_000 })
    .toBe(new Date(clock.now()).toISOString());
});

it("keeps refresh_token_expires_in as refreshTokenExpiresAt and warns once before it", async () => {
  await expect.poll(() => issued, { timeout: 10_000 }).toBe(1);
  await expect
    .poll(async () => (await tw.getConnection("idle-1")).refreshTokenExpiresAt)
    .not.toBeNull();
  const view = await tw.getConnection("idle-1");
  const end = Date.parse(view.refreshTokenExpiresAt as string);
  expect(end).toBe(Date.parse(view.lastRefreshAt as string) + 30 * DAY);

  // Refreshes from now on carry no new refresh token: its end stays, and is warned once.
  rotate = false;
  await tw.deliverWebhooks();
  expect(receiver.received).toHaveLength(0);
  clock.set(end - 7 * DAY);
  await tw.refresh("idle-1"); // a refresh that keeps the same refresh token and its end
  expect((await tw.getConnection("idle-1")).refreshTokenExpiresAt).toBe(view.refreshTokenExpiresAt);
  await tw.deliverWebhooks();
  await tw.refresh("idle-1");
  await tw.deliverWebhooks();
  const expiring = receiver.received.filter(
    (r) => r.json.type === "connection.refresh_token_expiring",
  );
  expect(expiring).toHaveLength(1);
  expect(expiring[0]?.verified).toBe(true);
  expect(expiring[0]?.json.data).toMatchObject({
    connectionId: "idle-1",
    integration: "idle",
    status: "active",
    refreshTokenExpiresAt: view.refreshTokenExpiresAt,
  });

  // A rotated refresh token with a new end is a new end to warn about, in time.
  rotate = true;
  await tw.refresh("idle-1");
  const renewed = await tw.getConnection("idle-1");
  expect(Date.parse(renewed.refreshTokenExpiresAt as string)).toBe(clock.now() + 30 * DAY);
  await tw.deliverWebhooks();
  expect(
    receiver.received.filter((r) => r.json.type === "connection.refresh_token_expiring"),
  ).toHaveLength(1);
});
