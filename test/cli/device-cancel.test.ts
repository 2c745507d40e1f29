import { request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openStore } from "../../src/store/open.js";
import { CLI_PROCESSES, runCli, startCli } from "../fixtures/cli.js";
import { sqliteDatabase, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import { deviceIntegrationArgs, startDeviceProvider } from "../fixtures/device-provider.js";
import type { OidcFixture } from "../fixtures/oidc-provider.js";
import { startTestService, type TestService } from "../fixtures/service.js";

/**
 * A device flow nobody will approve is withdrawn, not left polling until its code
 * expires: Ctrl-C on `tokenwarden authorize` withdraws it, on the database and through
 * a service (`DELETE /v1/connections/:id/authorize`), and `authorize <id> --cancel`
 * withdraws one started elsewhere. Real oidc-provider device flows; the CLI is the built
 * command, run as a process and interrupted with a real SIGINT.
 */
const API_KEY = "device-cancel-test-key-0123456789";
let op: OidcFixture;
let localDb: TestDatabase;
let serviceDb: TestDatabase;
let service: TestService;
let local: Record<string, string>;
let remote: Record<string, string>;

beforeAll(async () => {
  op = await startDeviceProvider({ codeGrant: false });
  localDb = await sqliteDatabase();
  service = await startTestService({ apiKey: API_KEY, serve: { webhooks: false } });
  serviceDb = service.database;
  local = { TOKENWARDEN_DATABASE_URL: localDb.url, TOKENWARDEN_SECRET_KEY: TEST_SECRET_KEY };
  remote = { TOKENWARDEN_URL: service.url, TOKENWARDEN_API_KEY: API_KEY };
  const setUp = [
    deviceIntegrationArgs(op, "tv"),
    ["connection", "add", "tv-1", "--integration", "tv"],
    ["connection", "add", "tv-2", "--integration", "tv"],
  ];
  for (const env of [local, remote])
    for (const args of setUp) expect((await runCli(args, { env })).code).toBe(0);
}, CLI_PROCESSES.timeout);
afterAll(async () => {
  await service?.close();
  await op?.close();
  await localDb?.drop();
});

/** The flow the side's store holds for `id`, read from its database. */
async function pendingFlow(db: TestDatabase, id: string): Promise<unknown> {
  const store = await openStore({ database: db.url, secretKey: TEST_SECRET_KEY });
  try {
    return await store.getDeviceAuthorization(id);
  } finally {
    await store.close();
  }
}

const deleteRoute = (id: string, apiKey = API_KEY) =>
  request(`${service.url}/v1/connections/${id}/authorize`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${apiKey}` },
  });

it(
  "Ctrl-C on authorize withdraws the device flow, on the database and through a service",
  async () => {
    for (const [env, db] of [
      [local, localDb],
      [remote, serviceDb],
    ] as const) {
      const child = startCli(["authorize", "tv-1", "--timeout", "60"], { env });
      await child.waitFor(/^\(or open \S+\)$/, "stderr");
      expect(await pendingFlow(db, "tv-1")).toBeDefined();
      expect(await child.stop("SIGINT")).toBe(130);
      expect(child.lines("stderr").at(-1)).toBe("tv-1: device authorization cancelled");
      expect(child.lines()).toEqual([]);
      // Nothing is left to poll, and the history says why the flow ended.
      expect(await pendingFlow(db, "tv-1")).toBeUndefined();
      const events = await runCli(["events", "tv-1", "--json"], { env });
      expect(JSON.parse(events.stdout)[0]).toMatchObject({
        trigger: "manual",
        action: "authorize",
        outcome: "failure",
        errorCode: "conflict",
      });
      // Withdrawn once: a second withdrawal has nothing to withdraw.
      expect(await runCli(["authorize", "tv-1", "--cancel"], { env })).toMatchObject({
        code: 1,
        stderr: "error not_found: connection tv-1 has no device authorization pending\n",
      });
    }
  },
  CLI_PROCESSES.timeout,
);

it(
  "authorize --cancel and DELETE /v1/connections/:id/authorize withdraw a flow started elsewhere",
  async () => {
    const start = () =>
      request(`${service.url}/v1/connections/tv-2/authorize`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}` },
      });
    const started = await start();
    expect(started.statusCode).toBe(200);
    await started.body.dump();
    expect(await runCli(["authorize", "tv-2", "--cancel"], { env: remote })).toMatchObject({
      code: 0,
      stdout: "tv-2: device authorization withdrawn\n",
    });
    expect(await pendingFlow(serviceDb, "tv-2")).toBeUndefined();

    await (await start()).body.dump();
    // A client key may not; an admin key may, once.
    const asClient = await runCli(["apikey", "create", "--name", "wf", "--role", "client"], {
      env: remote,
    });
    const forbidden = await deleteRoute("tv-2", asClient.stdout.trim());
    expect(forbidden.statusCode).toBe(403);
    await forbidden.body.dump();
    const withdrawn = await deleteRoute("tv-2");
    expect(withdrawn.statusCode).toBe(204);
    await withdrawn.body.dump();
    const again = await deleteRoute("tv-2");
    expect(again.statusCode).toBe(404);
    expect(((await again.body.json()) as { error: { code: string } }).error.code).toBe("not_found");
    expect(await pendingFlow(serviceDb, "tv-2")).toBeUndefined();
  },
  CLI_PROCESSES.timeout,
);
