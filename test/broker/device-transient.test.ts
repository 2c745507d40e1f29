import { afterAll, beforeAll, expect, it } from "vitest";
import { Tokenwarden } from "../../src/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/store.js";
import { TEST_SECRET_KEY } from "../fixtures/databases.js";
import {
  DEVICE_CLIENT,
  DEVICE_GRANT,
  deviceIntegration,
  startDeviceProvider,
} from "../fixtures/device-provider.js";
import { type FailingProxy, startFailingProxy } from "../fixtures/failing-proxy.js";
import { approveDeviceCode } from "../fixtures/interaction.js";
import type { OidcFixture } from "../fixtures/oidc-provider.js";
import { SteppedClock } from "../fixtures/stepped-clock.js";
import { caught } from "../helpers.js";

/**
 * RFC 8628 §3.5: polling ends on `access_denied`, `expired_token` or another OAuth
 * error, not on the token endpoint having a bad minute. A real oidc-provider runs the
 * device flow; a proxy in front of its token endpoint fails the polls each test asks it
 * to (a 503 page, a dropped connection, a 500 `server_error`, a 429, a hang), and the
 * poller waits longer after each (doubling, bounded) and goes on until the person
 * approves or the code expires. Waits run on a stepped clock: no real 5-s polls.
 */

let op: OidcFixture;
let proxy: FailingProxy;
let store: Store;
let tw: Tokenwarden;
const clock = new SteppedClock();

beforeAll(async () => {
  op = await startDeviceProvider();
  // Only the device code polls may fail; the device authorization request goes through.
  proxy = await startFailingProxy(op.issuer, (req) =>
    req.body.includes(encodeURIComponent(DEVICE_GRANT)),
  );
  store = await openStore({ database: "sqlite::memory:", secretKey: TEST_SECRET_KEY });
  tw = await Tokenwarden.open({ store, clock, scheduler: false, webhooks: false });
  for (const [key, timeoutMs] of [
    ["device", 10_000],
    ["device-quick", 300],
  ] as const) {
    await tw.putIntegration({
      key,
      ...deviceIntegration(op),
      tokenUrl: proxy.url(op.tokenUrl),
      timeoutMs,
    });
  }
});
afterAll(async () => {
  await tw.close();
  await store.close();
  await proxy.close();
  await op.close();
});

/** Sleeps asked for from now on, as the test wakes them. */
function sleepsSince(from: number): number[] {
  return clock.sleeps.slice(from);
}

it("a 503, a dropped connection, a server_error and a 429 are retried, waiting longer each time, and the flow completes", async () => {
  await tw.putConnection({ id: "tv-flaky", integration: "device" });
  const started = await tw.startDeviceAuthorization("tv-flaky");
  const intervalMs = started.interval * 1000;
  const from = clock.sleeps.length;
  expect(await clock.nextSleep()).toBe(intervalMs);

  proxy.failNext("503", "reset", "server_error", { tooManyRequests: 90 });
  for (const expected of [2, 4, 8]) {
    clock.wake();
    // RFC 8628 §3.5's recommendation: the interval doubled on each failure.
    expect(await clock.nextSleep()).toBe(intervalMs * expected);
  }
  clock.wake();
  // The server's Retry-After is longer than the backoff: it wins.
  expect(await clock.nextSleep()).toBe(90_000);
  // The schedule is in the store, for whichever process polls next; the interval is not changed.
  const flow = await store.getDeviceAuthorization("tv-flaky");
  expect(flow?.intervalMs).toBe(intervalMs);
  expect(flow?.nextPollAt).toBe(clock.now() + 90_000);

  clock.wake();
  // A real answer again (authorization_pending): back to the server's interval.
  expect(await clock.nextSleep()).toBe(intervalMs);
  await approveDeviceCode(started.verificationUriComplete as string);
  const done = tw.waitForDeviceAuthorization("tv-flaky");
  clock.wake();
  expect((await done).status).toBe("active");
  expect((await tw.getToken("tv-flaky")).accessToken).toMatch(/\S/);
  expect(proxy.outcomes.splice(0)).toEqual([
    "503",
    "reset",
    "server_error",
    "429 retry-after 90",
    "forwarded 400",
    "forwarded 200",
  ]);
  expect(sleepsSince(from)).toEqual([
    intervalMs,
    intervalMs * 2,
    intervalMs * 4,
    intervalMs * 8,
    90_000,
    intervalMs,
  ]);
});

it("a poll that times out is retried too", async () => {
  await tw.putConnection({ id: "tv-hang", integration: "device-quick" });
  const started = await tw.startDeviceAuthorization("tv-hang");
  const intervalMs = started.interval * 1000;
  await clock.nextSleep();
  proxy.failNext("hang");
  await approveDeviceCode(started.verificationUriComplete as string);
  clock.wake();
  // The hung poll ends at the integration's 300 ms timeout; the next waits twice as long.
  expect(await clock.nextSleep()).toBe(intervalMs * 2);
  const done = tw.waitForDeviceAuthorization("tv-hang");
  clock.wake();
  expect((await done).status).toBe("active");
  expect(proxy.outcomes.splice(0)).toEqual(["hang", "forwarded 200"]);
});

it("an OAuth error other than authorization_pending or slow_down still ends the flow at once", async () => {
  await tw.putConnection({ id: "tv-refused", integration: "device" });
  await tw.startDeviceAuthorization("tv-refused");
  await clock.nextSleep();
  proxy.failNext({ status: 400, body: { error: "invalid_client" } });
  const done = caught(() => tw.waitForDeviceAuthorization("tv-refused"));
  clock.wake();
  expect(await done).toMatchObject({ code: "token_endpoint_error", oauthError: "invalid_client" });
  expect(await store.getDeviceAuthorization("tv-refused")).toBeUndefined();
  expect(proxy.outcomes.splice(0)).toEqual(["answered 400"]);
});

it("failures until the code expires end the flow as expired, saying what failed, with every wait bounded", async () => {
  await tw.putConnection({ id: "tv-down", integration: "device" });
  const startedAt = clock.now();
  const started = await tw.startDeviceAuthorization("tv-down");
  const expiresAt = Date.parse(started.expiresAt);
  const from = clock.sleeps.length;
  proxy.failNext(...Array.from({ length: 100 }, () => "503" as const));
  const done = caught(() => tw.waitForDeviceAuthorization("tv-down"));
  while (clock.now() < expiresAt) {
    await clock.nextSleep();
    clock.wake();
  }
  const failure = await done;
  expect(failure).toMatchObject({ code: "needs_reauth", oauthError: "expired_token" });
  expect(failure.message).toContain("HTTP 503");
  const sleeps = sleepsSince(from);
  // Doubling stops at a minute; the last wait ends when the code expires.
  expect(Math.max(...sleeps)).toBe(60_000);
  expect(sleeps.reduce((a, b) => a + b, 0)).toBe(expiresAt - startedAt);
  expect(await store.getDeviceAuthorization("tv-down")).toBeUndefined();
  const outcomes = proxy.outcomes.splice(0);
  expect(new Set(outcomes)).toEqual(new Set(["503"]));
  // Not hammered: about one poll a minute once the backoff is at its bound.
  expect(outcomes.length).toBeLessThanOrEqual(Math.ceil((expiresAt - startedAt) / 60_000) + 4);
  proxy.stopFailing();
});

it("a device flow whose endpoints come from discovery alone", async () => {
  await tw.putIntegration({
    key: "device-discovered",
    grantType: "device_code",
    discoveryUrl: op.issuer,
    clientId: DEVICE_CLIENT.clientId,
    clientSecret: DEVICE_CLIENT.clientSecret,
    scopes: ["openid"],
  });
  await tw.putConnection({ id: "tv-discovered", integration: "device-discovered" });
  const started = await tw.startDeviceAuthorization("tv-discovered");
  expect(started.verificationUri).toBe(`${op.issuer}/device`);
  await clock.nextSleep();
  await approveDeviceCode(started.verificationUriComplete as string);
  const done = tw.waitForDeviceAuthorization("tv-discovered");
  clock.wake();
  expect((await done).status).toBe("active");
});
