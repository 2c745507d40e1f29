import { afterAll, beforeAll, expect, it } from "vitest";
import { Tokenwarden } from "../../src/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/store.js";
import { TEST_SECRET_KEY } from "../fixtures/databases.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { SteppedClock } from "../fixtures/stepped-clock.js";

/**
 * RFC 8628 §3.5 `slow_down`: the poller adds 5 s to its interval, for every later poll.
 * oidc-provider never answers slow_down (its device_code grant throws only
 * authorization_pending and expired_token), so a small server of ours does, the way a
 * strict one would: a poll sooner than the interval it expects is answered slow_down
 * and makes that interval 5 s longer; and while busy it slows the next poll down anyway.
 * Its sense of time is the test's stepped clock, so the poller's waits are what it sees.
 */
const ADVERTISED_INTERVAL_S = 2;
const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

let quirk: QuirkServer;
let store: Store;
let tw: Tokenwarden;
const clock = new SteppedClock();

/** The strict server's state. */
const server = {
  expectedMs: ADVERTISED_INTERVAL_S * 1000,
  lastAt: 0,
  busy: false,
  approved: false,
  answers: [] as string[],
};

beforeAll(async () => {
  quirk = await startQuirkServer();
  quirk.on("/device", (_req, res) => {
    server.lastAt = clock.now();
    json(res, 200, {
      device_code: "slow-device-code",
      user_code: "SLOW-DOWN",
      verification_uri: quirk.url("/activate"),
      expires_in: 600,
      interval: ADVERTISED_INTERVAL_S,
    });
  });
  quirk.on("/token", (req, res) => {
    if (req.form.get("grant_type") !== DEVICE_GRANT) return json(res, 400, { error: "nope" });
    const now = clock.now();
    const tooSoon = now - server.lastAt < server.expectedMs;
    server.lastAt = now;
    let answer: string;
    if (server.busy || tooSoon) {
      server.busy = false;
      server.expectedMs += 5000;
      answer = "slow_down";
    } else {
      answer = server.approved ? "token" : "authorization_pending";
    }
    server.answers.push(answer);
    if (answer !== "token") return json(res, 400, { error: answer });
    json(res, 200, { access_token: "slow-at", token_type: "Bearer", expires_in: 3600 });
  });
  store = await openStore({ database: "sqlite::memory:", secretKey: TEST_SECRET_KEY });
  tw = await Tokenwarden.open({ store, clock, scheduler: false, webhooks: false });
  await tw.putIntegration({
    key: "slow",
    grantType: "device_code",
    deviceAuthorizationUrl: quirk.url("/device"),
    tokenUrl: quirk.url("/token"),
    clientId: "slow-client",
    clientAuth: "none",
  });
  await tw.putConnection({ id: "slow-tv", integration: "slow" });
});
afterAll(async () => {
  await tw.close();
  await store.close();
  await quirk.close();
});

it("answers slow_down by waiting 5 s longer, for every later poll, and finishes", async () => {
  const started = await tw.startDeviceAuthorization("slow-tv");
  expect(started.interval).toBe(ADVERTISED_INTERVAL_S);
  expect(await clock.nextSleep()).toBe(2000);

  server.busy = true;
  clock.wake();
  // Ignoring slow_down would wait 2 s again, and be slowed down again.
  expect(await clock.nextSleep()).toBe(7000);
  expect(server.answers).toEqual(["slow_down"]);
  // The longer interval is in the store, for whichever process polls next.
  expect((await store.getDeviceAuthorization("slow-tv"))?.intervalMs).toBe(7000);

  clock.wake();
  expect(await clock.nextSleep()).toBe(7000);
  expect(server.answers).toEqual(["slow_down", "authorization_pending"]);

  server.approved = true;
  const done = tw.waitForDeviceAuthorization("slow-tv");
  clock.wake();
  expect((await done).status).toBe("active");
  expect(server.answers).toEqual(["slow_down", "authorization_pending", "token"]);
  expect(clock.sleeps).toEqual([2000, 7000, 7000]);
});
