import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";
import { ManualClock, type Tokenwarden } from "../../src/index.js";
import { openBroker } from "../fixtures/broker.js";
import { describeEachDriver, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import { startWorker } from "../fixtures/processes.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { startWebhookReceiver, type WebhookReceiver } from "../fixtures/webhook-receiver.js";
import { caught } from "../helpers.js";

/**
 * Lifecycle webhooks, delivered for real to a local receiver that checks each
 * signature with its own HMAC: the edges of a connection's status, retries with
 * backoff, giving up after 24 hours, and the outbox surviving the process.
 */
let quirk: QuirkServer;
let tokenAnswer: () => [number, unknown];

beforeAll(async () => {
  quirk = await startQuirkServer();
  quirk.on("/token", (_req, res) => {
    const [status, body] = tokenAnswer();
    json(res, status, body);
  });
});
afterAll(async () => {
  await quirk.close();
});

const ACCESS_TOKEN = "at-secret-value-123";
const CLIENT_SECRET = "client-secret-value-456";
const ok = (): [number, unknown] => [
  200,
  { access_token: ACCESS_TOKEN, token_type: "Bearer", expires_in: 3600 },
];

await describeEachDriver("lifecycle webhooks on %s", (driver) => {
  let db: TestDatabase;
  let receiver: WebhookReceiver;
  const open: Tokenwarden[] = [];

  beforeEach(async () => {
    db = await driver.create();
    receiver = await startWebhookReceiver();
    tokenAnswer = ok;
  });
  afterEach(async () => {
    for (const tw of open.splice(0)) await tw.close();
    await receiver.close();
    await db.drop();
  });

  async function openTw(clock?: ManualClock): Promise<Tokenwarden> {
    const tw = await openBroker(db, { webhooks: false, ...(clock === undefined ? {} : { clock }) });
    open.push(tw);
    return tw;
  }

  async function setUp(tw: Tokenwarden, events?: string[]): Promise<void> {
    const { webhook } = await tw.webhooks.put("ops", {
      url: receiver.url,
      ...(events === undefined ? {} : { events }),
    });
    expect(webhook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    receiver.secret = webhook.secret as string;
    await tw.putIntegration({
      key: "acme",
      grantType: "client_credentials",
      tokenUrl: quirk.url("/token"),
      clientId: "app",
      clientSecret: CLIENT_SECRET,
    });
    await tw.putConnection({ id: "acme-prod", integration: "acme", environment: "prod" });
  }

  it("delivers each status edge once, signed, with no secret or token in the body", async () => {
    const tw = await openTw();
    await setUp(tw);
    await tw.refresh("acme-prod"); // active -> active: nothing
    tokenAnswer = () => [503, { error: "temporarily_unavailable" }];
    await caught(() => tw.refresh("acme-prod")); // active -> error
    await caught(() => tw.refresh("acme-prod")); // error -> error: nothing
    tokenAnswer = ok;
    await tw.refresh("acme-prod"); // error -> active: recovered
    tokenAnswer = () => [400, { error: "invalid_client" }];
    await caught(() => tw.refresh("acme-prod")); // needs_reauth
    await tw.revoke("acme-prod");
    await tw.deleteConnection("acme-prod");
    await tw.deliverWebhooks();

    const types = receiver.received.map((r) => r.json.type);
    expect(types).toEqual([
      "connection.error",
      "connection.recovered",
      "connection.needs_reauth",
      "connection.revoked",
      "connection.deleted",
    ]);
    for (const r of receiver.received) {
      expect(r.verified).toBe(true);
      // The specification's own library agrees (its clock check passes: real time here).
      expect(
        new Webhook(receiver.secret).verify(r.body, {
          "webhook-id": r.id,
          "webhook-timestamp": String(r.timestamp),
          "webhook-signature": r.signature,
        }),
      ).toEqual(r.json);
      expect(r.id).toMatch(/^msg_/);
      expect(r.body).not.toContain(ACCESS_TOKEN);
      expect(r.body).not.toContain(CLIENT_SECRET);
      expect(r.json.data).toMatchObject({
        connectionId: "acme-prod",
        integration: "acme",
        environment: "prod",
      });
    }
    const [error, recovered, reauth] = receiver.received.map((r) => r.json.data);
    expect(error).toMatchObject({ status: "error", previousStatus: "active" });
    expect((error as { error: { code: string } }).error.code).toBe("token_endpoint_error");
    expect(recovered).toMatchObject({ status: "active", previousStatus: "error" });
    expect(reauth).toMatchObject({
      status: "needs_reauth",
      previousStatus: "active",
      reconnect: {
        method: "POST",
        path: "/v1/connect-sessions",
        body: { connectionId: "acme-prod" },
      },
    });
    expect(new Set(receiver.received.map((r) => r.id)).size).toBe(5);

    const deliveries = await tw.webhooks.deliveries("ops");
    expect(deliveries).toHaveLength(5);
    expect(deliveries.every((d) => d.status === "succeeded" && d.attempts === 1)).toBe(true);
    // The secret is shown once: never in a read.
    expect(JSON.stringify(await tw.webhooks.list())).not.toContain(receiver.secret);
  });

  it("sends only the events a webhook takes, and refuses URLs that are not https or loopback", async () => {
    const tw = await openTw();
    await setUp(tw, ["connection.deleted"]);
    tokenAnswer = () => [400, { error: "invalid_client" }];
    await caught(() => tw.refresh("acme-prod"));
    await tw.deleteConnection("acme-prod");
    await tw.deliverWebhooks();
    expect(receiver.received.map((r) => r.json.type)).toEqual(["connection.deleted"]);

    for (const url of [
      "http://example.com/hook",
      "ftp://127.0.0.1/x",
      "https://u:p@example.com/",
    ]) {
      const error = await caught(() => tw.webhooks.put("bad", { url }));
      expect(error.code).toBe("invalid_config");
      expect(error.field).toBe("url");
    }
    const updated = await tw.webhooks.put("ops", { url: receiver.url, enabled: false });
    expect(updated.created).toBe(false);
    expect(updated.webhook.secret).toBeUndefined();
  });

  it("retries a failing receiver with backoff until it recovers, then gives up after 24 hours", async () => {
    const clock = new ManualClock(Date.now());
    const tw = await openTw(clock);
    await setUp(tw);
    receiver.answer((_req, res) => res.writeHead(500).end());
    await tw.deleteConnection("acme-prod");
    await tw.deliverWebhooks();
    let [delivery] = await tw.webhooks.deliveries("ops");
    expect(delivery).toMatchObject({ status: "pending", attempts: 1, lastHttpStatus: 500 });
    const retryAt = Date.parse(delivery?.nextAttemptAt as string);
    expect(retryAt).toBeGreaterThan(clock.now());

    await tw.deliverWebhooks(); // not due yet: nothing sent
    expect(receiver.received).toHaveLength(1);

    receiver.answer((_req, res) => res.writeHead(200).end("ok"));
    clock.set(retryAt);
    await tw.deliverWebhooks();
    [delivery] = await tw.webhooks.deliveries("ops");
    expect(delivery).toMatchObject({ status: "succeeded", attempts: 2, lastHttpStatus: 200 });
    expect(receiver.received).toHaveLength(2);
    // The same message, signed again for its new timestamp.
    expect(receiver.received[1]?.id).toBe(receiver.received[0]?.id);
    expect(receiver.received.every((r) => r.verified)).toBe(true);

    // A receiver that never recovers: retried for 24 hours, then failed.
    receiver.answer((_req, res) => res.writeHead(503).end());
    await tw.putConnection({ id: "acme-2", integration: "acme" });
    await tw.deleteConnection("acme-2");
    const start = clock.now();
    for (let i = 0; i < 40; i += 1) {
      await tw.deliverWebhooks();
      const [latest] = await tw.webhooks.deliveries("ops");
      if (latest?.status !== "pending") break;
      clock.set(Date.parse(latest.nextAttemptAt as string));
    }
    const [failed] = await tw.webhooks.deliveries("ops");
    expect(failed?.status).toBe("failed");
    expect(Date.parse(failed?.lastAttemptAt as string) - start).toBeGreaterThanOrEqual(
      24 * 3600_000,
    );
    expect(failed?.attempts).toBeGreaterThan(5);
  });

  it("does not follow a redirect to another origin", async () => {
    const other = await startWebhookReceiver();
    try {
      const tw = await openTw();
      await setUp(tw);
      receiver.answer((_req, res) => res.writeHead(307, { location: other.url }).end());
      await tw.deleteConnection("acme-prod");
      await tw.deliverWebhooks();
      const [delivery] = await tw.webhooks.deliveries("ops");
      expect(delivery).toMatchObject({ status: "pending", lastHttpStatus: 307 });
      expect(delivery?.lastError).toContain("not followed");
      expect(other.received).toHaveLength(0);
    } finally {
      await other.close();
    }
  });

  it("loses nothing across a restart: another process delivers what was written", async () => {
    const first = await openTw();
    await setUp(first);
    await first.deleteConnection("acme-prod");
    await first.close();
    open.splice(0);
    expect(receiver.received).toHaveLength(0);

    const second = await openTw();
    await second.deliverWebhooks();
    expect(receiver.received.map((r) => r.json.type)).toEqual(["connection.deleted"]);
    expect(receiver.received[0]?.verified).toBe(true);
  });

  it("two processes deliver each event once; a killed one's claim passes to the other", async () => {
    const tw = await openTw();
    await setUp(tw, ["connection.deleted"]);
    const options = { database: db.url, secretKey: TEST_SECRET_KEY, leaseMs: 4000, timeoutMs: 500 };
    const deleted = async (id: string) => {
      await tw.putConnection({ id, integration: "acme" });
      await tw.deleteConnection(id);
    };

    // A receiver that holds the first request open; its sender is killed mid-attempt.
    let held = false;
    receiver.answer((_req, res) => {
      if (!held) {
        held = true;
        return; // never answered
      }
      res.writeHead(204).end();
    });
    const a = startWorker(options, "test/fixtures/webhook-worker.ts");
    expect(await a.nextLine()).toBe("ready");
    await tw.deleteConnection("acme-prod");
    await expect.poll(() => receiver.received.length, { timeout: 20_000 }).toBe(1);
    a.child.kill("SIGKILL");
    await a.exited;

    const b = startWorker(options, "test/fixtures/webhook-worker.ts");
    const c = startWorker(options, "test/fixtures/webhook-worker.ts");
    const count = 30;
    try {
      expect(await b.nextLine()).toBe("ready");
      expect(await c.nextLine()).toBe("ready");
      for (let i = 0; i < count; i += 1) await deleted(`c${i}`);
      const succeeded = async () =>
        (await tw.webhooks.deliveries("ops", { status: "succeeded", limit: 500 })).length;
      await expect.poll(succeeded, { timeout: 30_000 }).toBe(count + 1);
    } finally {
      b.child.stdin.end();
      c.child.stdin.end();
      await Promise.all([b.exited, c.exited]);
    }
    const ids = receiver.received.map((r) => r.id);
    // The killed sender's event came again (at least once); every other came once.
    expect(ids.filter((id) => id === ids[0])).toHaveLength(2);
    expect(ids).toHaveLength(count + 2);
    expect(new Set(ids).size).toBe(count + 1);
    expect(receiver.received.every((r) => r.verified)).toBe(true);
  });
});
