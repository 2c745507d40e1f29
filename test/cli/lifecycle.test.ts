import { afterAll, beforeAll, expect, it } from "vitest";
import { openBroker } from "../fixtures/broker.js";
import { localEnv, runCli } from "../fixtures/cli.js";
import { sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";
import { startWebhookReceiver, type WebhookReceiver } from "../fixtures/webhook-receiver.js";

/** `webhook add|list|deliveries|rm` and `connect <id>`, as a shell script runs them. */
let db: TestDatabase;
let receiver: WebhookReceiver;
let env: Record<string, string>;

beforeAll(async () => {
  db = await sqliteDatabase();
  receiver = await startWebhookReceiver();
  env = { ...localEnv(db), TOKENWARDEN_PUBLIC_URL: "https://tokens.example.com" };
});
afterAll(async () => {
  await receiver.close();
  await db.drop();
});

it("adds a webhook (secret shown once), lists it, lists its deliveries, removes it", async () => {
  const added = await runCli(
    ["webhook", "add", "ops", "--url", receiver.url, "--event", "connection.deleted"],
    { env },
  );
  expect(added.stderr).toBe("");
  const secret = /signing secret \(shown once\): (whsec_\S+)/.exec(added.stdout)?.[1];
  expect(secret).toBeDefined();
  receiver.secret = secret as string;

  const listed = await runCli(["webhook", "list", "--json"], { env });
  expect(JSON.parse(listed.stdout)).toMatchObject([
    { id: "ops", url: receiver.url, events: ["connection.deleted"], enabled: true },
  ]);
  expect(listed.stdout).not.toContain(secret);

  // A CLI command only writes the outbox; a process with the dispatcher delivers it.
  const tw = await openBroker(db, { webhooks: false });
  try {
    await tw.putIntegration({
      key: "cc",
      grantType: "client_credentials",
      tokenUrl: "https://auth.example/token",
      clientId: "app",
    });
    await tw.putConnection({ id: "cc-1", integration: "cc" });
    expect((await runCli(["connection", "rm", "cc-1"], { env })).code).toBe(0);
    await tw.deliverWebhooks();
  } finally {
    await tw.close();
  }
  expect(receiver.received.map((r) => [r.json.type, r.verified])).toEqual([
    ["connection.deleted", true],
  ]);

  const deliveries = await runCli(["webhook", "deliveries", "ops", "--json"], { env });
  expect(JSON.parse(deliveries.stdout)).toMatchObject([
    { type: "connection.deleted", status: "succeeded", attempts: 1 },
  ]);
  expect((await runCli(["webhook", "rm", "ops"], { env })).code).toBe(0);
  const gone = await runCli(["webhook", "deliveries", "ops"], { env });
  expect(gone.code).toBe(1);
  expect(gone.stderr).toContain("error not_found");
});

it("prints a connect link for a connection to re-authorize", async () => {
  const tw = await openBroker(db, { webhooks: false });
  try {
    await tw.putIntegration({
      key: "crm",
      grantType: "authorization_code",
      authorizationUrl: "https://auth.example/authorize",
      tokenUrl: "https://auth.example/token",
      clientId: "app",
    });
    await tw.putConnection({ id: "crm-1", integration: "crm" });
  } finally {
    await tw.close();
  }
  const made = await runCli(["connect", "crm-1", "--json"], { env });
  expect(made.stderr).toBe("");
  const { url, expiresAt } = JSON.parse(made.stdout);
  expect(url).toMatch(/^https:\/\/tokens\.example\.com\/connect\/[A-Za-z0-9_-]{43}$/);
  expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now());
  const refused = await runCli(["connect", "crm-1", "--return-url", "https://evil.example/"], {
    env,
  });
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain("error invalid_config: returnUrl");
});
