import pg from "pg";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { Tokenwarden } from "../../src/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/store.js";
import { describeEachDriver, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import {
  DEVICE_GRANT,
  deviceIntegration,
  startDeviceProvider,
} from "../fixtures/device-provider.js";
import { approveDeviceCode } from "../fixtures/interaction.js";
import type { OidcFixture } from "../fixtures/oidc-provider.js";
import { openRawSqlite } from "../fixtures/raw-sqlite.js";
import { SteppedClock } from "../fixtures/stepped-clock.js";
import { caught } from "../helpers.js";

/**
 * Device flows (RFC 8628) live in the store, not in the process that started them:
 * against oidc-provider, on both drivers, a second Tokenwarden on the same database
 * finishes a flow the first started, and a process started after the first went away
 * takes up the pending flow on its own. Waits run on a stepped clock: no real 5-s polls.
 */

let op: OidcFixture;

beforeAll(async () => {
  op = await startDeviceProvider();
});
afterAll(() => op.close());

const deviceGrantRequests = () => op.tokenRequestLog.filter((e) => e.grantType === DEVICE_GRANT);

async function rawSealedDeviceCode(db: TestDatabase, id: string): Promise<unknown> {
  const select = "select sealed_device_code from tw_device_authorizations where connection_id = ";
  if (db.url.startsWith("sqlite:")) {
    const raw = await openRawSqlite(db.files[0] as string);
    try {
      return raw.query(`${select} ?`, [id])[0]?.sealed_device_code;
    } finally {
      raw.close();
    }
  }
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return (await client.query(`${select} $1`, [id])).rows[0]?.sealed_device_code;
  } finally {
    await client.end();
  }
}

await describeEachDriver("device flows kept in the store on $name", (driver) => {
  let db: TestDatabase;
  const opened: (Tokenwarden | Store)[] = [];

  beforeAll(async () => {
    db = await driver.create();
    const tw = await Tokenwarden.open({
      database: db.url,
      secretKey: TEST_SECRET_KEY,
      scheduler: false,
    });
    await tw.putIntegration({ key: "device", ...deviceIntegration(op) });
    await tw.close();
  });
  afterEach(async () => {
    for (const item of opened.splice(0).reverse()) await item.close();
  });
  afterAll(() => db.drop());

  async function open(clock: SteppedClock, scheduler: boolean): Promise<Tokenwarden> {
    const tw = await Tokenwarden.open({
      database: db.url,
      secretKey: TEST_SECRET_KEY,
      scheduler,
      webhooks: false,
      clock,
    });
    opened.push(tw);
    return tw;
  }

  it("a second instance on the same database finishes a flow the first started", async () => {
    const clockA = new SteppedClock();
    const first = await open(clockA, false);
    await first.putConnection({ id: "tv-1", integration: "device" });
    const started = await first.startDeviceAuthorization("tv-1");
    // The first process waits out the server's interval before its first poll...
    expect(await clockA.nextSleep()).toBe(started.interval * 1000);
    // ...and goes away before it polls; the flow is in the store, its device code sealed.
    await first.close();
    const sealed = await rawSealedDeviceCode(db, "tv-1");
    expect(sealed).toMatch(/^tw1\./);
    const store = await openStore({ database: db.url, secretKey: TEST_SECRET_KEY });
    opened.push(store);
    const flow = await store.getDeviceAuthorization("tv-1");
    expect(flow?.deviceCode).toMatch(/\S/);
    expect(flow?.deviceCode).not.toBe(sealed);
    expect(flow?.intervalMs).toBe(started.interval * 1000);

    await approveDeviceCode(started.verificationUriComplete as string);
    const before = deviceGrantRequests().length;
    const clockB = new SteppedClock(clockA.now());
    const second = await open(clockB, false);
    const done = second.waitForDeviceAuthorization("tv-1");
    // The second process keeps the stored schedule: the first poll is still an interval away.
    expect(await clockB.nextSleep()).toBe(started.interval * 1000);
    clockB.wake();
    expect((await done).status).toBe("active");
    expect(deviceGrantRequests().length - before).toBe(1);
    expect((await second.getToken("tv-1")).accessToken).toMatch(/\S/);
    // Ended: nothing left for anyone to poll.
    expect(await store.getDeviceAuthorization("tv-1")).toBeUndefined();
  });

  it("a process started after the first went away takes up the pending flow on its own", async () => {
    const clockA = new SteppedClock();
    const first = await open(clockA, false);
    await first.putConnection({ id: "tv-2", integration: "device" });
    const started = await first.startDeviceAuthorization("tv-2");
    await clockA.nextSleep();
    await first.close(); // a restart: this process is gone
    await approveDeviceCode(started.verificationUriComplete as string);

    const clockB = new SteppedClock(clockA.now());
    const second = await open(clockB, true);
    const active = new Promise<void>((resolve) => {
      second.on("status", (change) => {
        if (change.connectionId === "tv-2" && change.status === "active") resolve();
      });
    });
    // Nobody asked: the new process found the flow in the store and polls it.
    expect(await clockB.nextSleep()).toBe(started.interval * 1000);
    clockB.wake();
    await active;
    expect((await second.getConnection("tv-2")).status).toBe("active");
  });

  it("a cancel in another process stops the poller at its next look, before it polls", async () => {
    const clockA = new SteppedClock();
    const first = await open(clockA, false);
    await first.putConnection({ id: "tv-4", integration: "device" });
    const started = await first.startDeviceAuthorization("tv-4");
    expect(await clockA.nextSleep()).toBe(started.interval * 1000);
    const waiting = first.waitForDeviceAuthorization("tv-4");

    const second = await open(new SteppedClock(clockA.now()), false);
    const events: string[] = [];
    second.on("event", (e) => events.push(`${e.trigger}/${e.action}/${e.errorCode}`));
    await second.cancelDeviceAuthorization("tv-4");
    expect(events).toEqual(["manual/authorize/conflict"]);
    // Approved too late: the flow is gone, and the first process does not poll it again.
    await approveDeviceCode(started.verificationUriComplete as string);
    const before = deviceGrantRequests().length;
    clockA.wake();
    expect((await waiting).status).toBe("pending_authorization");
    expect(deviceGrantRequests().length).toBe(before);
    expect((await caught(() => second.cancelDeviceAuthorization("tv-4"))).code).toBe("not_found");
    const [newest] = await first.listEvents("tv-4", { limit: 1 });
    expect(newest).toMatchObject({ trigger: "manual", action: "authorize", outcome: "failure" });
    expect(newest?.errorDescription).toContain("cancelled");
  });

  it("a cancel in the process that polls tells its waiters why", async () => {
    const clock = new SteppedClock();
    const tw = await open(clock, false);
    await tw.putConnection({ id: "tv-5", integration: "device" });
    await tw.startDeviceAuthorization("tv-5");
    await clock.nextSleep();
    const waiting = caught(() => tw.waitForDeviceAuthorization("tv-5"));
    await tw.cancelDeviceAuthorization("tv-5");
    expect(await waiting).toMatchObject({ code: "conflict" });
    expect((await tw.getConnection("tv-5")).status).toBe("pending_authorization");
    expect((await caught(() => tw.cancelDeviceAuthorization("nobody"))).code).toBe("not_found");
  });

  it("a refusal seen by the process that took the flow up ends it there", async () => {
    const clockA = new SteppedClock();
    const first = await open(clockA, false);
    await first.putConnection({ id: "tv-3", integration: "device" });
    const started = await first.startDeviceAuthorization("tv-3");
    await clockA.nextSleep();
    await first.close();
    await approveDeviceCode(started.verificationUriComplete as string, { deny: true });

    const clockB = new SteppedClock(clockA.now());
    const second = await open(clockB, false);
    const done = caught(() => second.waitForDeviceAuthorization("tv-3"));
    await clockB.nextSleep();
    clockB.wake();
    expect((await done).oauthError).toBe("access_denied");
    // Nothing is left to poll, and a later wait has nothing to wait for.
    await second.waitForDeviceAuthorization("tv-3");
  });
});
