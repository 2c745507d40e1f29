import { Writable } from "node:stream";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Tokenwarden } from "../../src/index.js";
import { type CliResult, runCli, startCli } from "../fixtures/cli.js";
import { sqliteDatabase, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import { deviceIntegrationArgs, startDeviceProvider } from "../fixtures/device-provider.js";
import { approveDeviceCode } from "../fixtures/interaction.js";
import type { OidcFixture } from "../fixtures/oidc-provider.js";
import { startTestService, type TestService } from "../fixtures/service.js";
import { startWebhookReceiver, type WebhookReceiver } from "../fixtures/webhook-receiver.js";

/**
 * `webhook ...`, `connect <id>`, `presets` and `authorize` of a device grant through a service (TOKENWARDEN_URL): each
 * runs on a database and through a service started here (with its own database), and
 * both must print the same and exit the same. The service logs everything it would
 * (trace), so a signing secret in its log would be seen.
 */
const API_KEY = "remote-lifecycle-test-key-0123456789";
const PUBLIC_URL = "https://tokens.example.com";
const RETURN_ORIGIN = "https://app.example.com";
let localDb: TestDatabase;
let service: TestService;
let localHooks: WebhookReceiver;
let serviceHooks: WebhookReceiver;
let op: OidcFixture;
let local: Record<string, string>;
let remote: Record<string, string>;
const serviceLog: string[] = [];
/** Each test runs the CLI a few dozen times, a process each: slow on a loaded machine. */
const MANY_RUNS_MS = 240_000;

beforeAll(async () => {
  op = await startDeviceProvider({ codeGrant: false });
  localDb = await sqliteDatabase();
  localHooks = await startWebhookReceiver();
  serviceHooks = await startWebhookReceiver();
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      serviceLog.push(chunk.toString());
      done();
    },
  });
  service = await startTestService({
    apiKey: API_KEY,
    settings: { publicUrl: PUBLIC_URL },
    env: { TOKENWARDEN_CONNECT_RETURN_ORIGINS: RETURN_ORIGIN },
    // The test delivers (deliverWebhooks), so the outbox is seen before and after.
    serve: { logger: { level: "trace", stream: logStream }, webhooks: false },
  });
  local = {
    TOKENWARDEN_DATABASE_URL: localDb.url,
    TOKENWARDEN_SECRET_KEY: TEST_SECRET_KEY,
    TOKENWARDEN_PUBLIC_URL: PUBLIC_URL,
    TOKENWARDEN_CONNECT_RETURN_ORIGINS: RETURN_ORIGIN,
  };
  // No database or master key; this machine's public URL and origins are not the service's.
  remote = {
    TOKENWARDEN_URL: service.url,
    TOKENWARDEN_API_KEY: API_KEY,
    TOKENWARDEN_PUBLIC_URL: "https://elsewhere.example",
  };
});
afterAll(async () => {
  await service?.close();
  await op?.close();
  await localHooks?.close();
  await serviceHooks?.close();
  await localDb?.drop();
});

/** What may differ between the two sides: secrets, link tokens, times, ids, ports. */
function normalize(result: CliResult): CliResult {
  const clean = (text: string) =>
    text
      .replace(/whsec_[A-Za-z0-9+/=]+/g, "<secret>")
      .replace(/\/connect\/[A-Za-z0-9_-]{43}/g, "/connect/<token>")
      .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "<time>")
      .replace(/http:\/\/127\.0\.0\.1:\d+\/hooks/g, "<receiver>")
      .replace(/"messageId": "[^"]+"/g, '"messageId": "<id>"')
      .replace(/"id": \d+/g, '"id": 0')
      .replace(/^\d+(\s)/gm, "0$1"); // a deliveries table's first column
  return { code: result.code, stdout: clean(result.stdout), stderr: clean(result.stderr) };
}

/** Runs the command on the database and through the service; both must agree. */
async function both(args: string[]): Promise<{ here: CliResult; there: CliResult }> {
  const [here, there] = await Promise.all([
    runCli(args, { env: local }),
    runCli(args, { env: remote }),
  ]);
  expect(normalize(there), `tokenwarden ${args.join(" ")}`).toEqual(normalize(here));
  return { here, there };
}

const secretOf = (result: CliResult) =>
  /^signing secret \(shown once\): (whsec_\S+)$/m.exec(result.stdout)?.[1];

describe("lifecycle commands through a service", () => {
  it(
    "webhook add|list|deliveries|rm: the same, and the secret shown once",
    async () => {
      const add = (env: Record<string, string>, hooks: WebhookReceiver) =>
        runCli(["webhook", "add", "ops", "--url", hooks.url, "--event", "connection.deleted"], {
          env,
        });
      const [here, there] = await Promise.all([add(local, localHooks), add(remote, serviceHooks)]);
      expect(normalize(there)).toEqual(normalize(here));
      expect(normalize(there)).toEqual({
        code: 0,
        stdout: "created webhook ops -> <receiver>\nsigning secret (shown once): <secret>\n",
        stderr: "",
      });
      const secret = secretOf(there) as string;
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
      localHooks.secret = secretOf(here) as string;
      serviceHooks.secret = secret;

      // Never again: not on an update, not in a listing, not in the service's log.
      const updated = await Promise.all([add(local, localHooks), add(remote, serviceHooks)]);
      for (const result of updated)
        expect(normalize(result)).toEqual({
          code: 0,
          stdout: "updated webhook ops -> <receiver>\n",
          stderr: "",
        });
      await both(["webhook", "list"]);
      const listed = await both(["webhook", "list", "--json"]);
      expect(JSON.parse(listed.there.stdout)).toMatchObject([
        { id: "ops", url: serviceHooks.url, events: ["connection.deleted"], enabled: true },
      ]);
      expect(listed.there.stdout).not.toContain("whsec_");

      // The service's refusals come back as the same errors.
      expect(
        (await both(["webhook", "add", "bad", "--url", "http://hooks.example/x"])).here,
      ).toMatchObject({
        code: 1,
        stderr: "error invalid_config: url: must be an https:// URL, or http:// on loopback\n",
      });
      expect(
        (await both(["webhook", "add", "no_pe!", "--url", "https://hooks.example/x"])).here,
      ).toMatchObject({ code: 1, stderr: expect.stringMatching(/^error invalid_config: id: /) });

      // A connection deleted on each side: one delivery each, pending, then delivered.
      for (const args of [
        ["integration", "add", "cc", "--grant-type", "client_credentials"],
        ["connection", "add", "cc-1", "--integration", "cc"],
        ["connection", "rm", "cc-1"],
      ]) {
        const extra =
          args[1] === "add" && args[0] === "integration"
            ? [
                "--token-url",
                "https://auth.example/token",
                "--client-id",
                "app",
                "--no-client-secret",
              ]
            : [];
        expect((await both([...args, ...extra])).here.code).toBe(0);
      }
      const pending = await both(["webhook", "deliveries", "ops", "--json"]);
      expect(JSON.parse(pending.there.stdout)).toMatchObject([
        { type: "connection.deleted", connectionId: "cc-1", status: "pending", attempts: 0 },
      ]);
      const tw = await Tokenwarden.open({
        database: localDb.url,
        secretKey: TEST_SECRET_KEY,
        scheduler: false,
        webhooks: false,
      });
      try {
        await tw.deliverWebhooks();
      } finally {
        await tw.close();
      }
      await service.tw.deliverWebhooks();
      for (const hooks of [localHooks, serviceHooks])
        expect(hooks.received.map((r) => [r.json.type, r.verified])).toEqual([
          ["connection.deleted", true],
        ]);
      await both(["webhook", "deliveries", "ops"]);
      const succeeded = await both(["webhook", "deliveries", "ops", "--status", "succeeded"]);
      expect(succeeded.there.stdout).toMatch(/connection\.deleted\s+cc-1\s+succeeded\s+1\s+204/);
      expect(
        (await both(["webhook", "deliveries", "ops", "--status", "failed", "--json"])).there.stdout,
      ).toBe("[]\n");

      expect((await both(["webhook", "rm", "ops"])).here).toMatchObject({
        code: 0,
        stdout: "deleted webhook ops\n",
      });
      for (const args of [
        ["webhook", "rm", "ops"],
        ["webhook", "deliveries", "ops"],
      ])
        expect((await both(args)).here).toMatchObject({
          code: 1,
          stderr: "error not_found: webhook ops does not exist\n",
        });
      await both(["webhook", "list", "--json"]);

      const log = serviceLog.join("");
      expect(log).toContain("/v1/webhooks/ops"); // it did log these requests
      expect(log).not.toContain(secret);
      expect(log).not.toContain("whsec_");
    },
    MANY_RUNS_MS,
  );

  it(
    "connect <id>: a link made by the service, on its own public URL",
    async () => {
      for (const args of [
        [
          "integration",
          "add",
          "crm",
          "--grant-type",
          "authorization_code",
          "--authorization-url",
          "https://auth.example/authorize",
          "--token-url",
          "https://auth.example/token",
          "--client-id",
          "app",
          "--no-client-secret",
        ],
        ["connection", "add", "crm-1", "--integration", "crm"],
      ])
        expect((await both(args)).here.code).toBe(0);

      const made = await both(["connect", "crm-1"]);
      expect(made.there.stdout).toMatch(
        /^https:\/\/tokens\.example\.com\/connect\/[A-Za-z0-9_-]{43}\n\(single use, until \S+\)\n$/,
      );
      const json = await both(["connect", "crm-1", "--json", "--expires", "600"]);
      const link = JSON.parse(json.there.stdout) as { url: string; expiresAt: string };
      expect(Object.keys(link)).toEqual(["url", "expiresAt", "connectionId"]);
      // A session of the service's: its page opens there.
      const page = await request(`${service.url}${new URL(link.url).pathname}`);
      expect(page.statusCode).toBe(200);
      expect(await page.body.text()).toContain("crm-1");

      expect(
        (await both(["connect", "crm-1", "--return-url", `${RETURN_ORIGIN}/done`])).here.code,
      ).toBe(0);
      expect(
        (await both(["connect", "crm-1", "--return-url", "https://evil.example/"])).here,
      ).toMatchObject({
        code: 1,
        stderr: expect.stringMatching(/^error invalid_config: returnUrl/),
      });
      expect((await both(["connect", "crm-1", "--expires", "10"])).here).toMatchObject({
        code: 1,
        stderr: expect.stringMatching(/^error invalid_config: expiresInSeconds/),
      });
      expect((await both(["connect", "nobody"])).here).toMatchObject({
        code: 1,
        stderr: expect.stringMatching(/^error not_found: connection nobody does not exist/),
      });
    },
    MANY_RUNS_MS,
  );

  it(
    "presets: the service's catalogue, as this package's",
    async () => {
      expect((await both(["presets"])).here.stdout).toMatch(/^NAME\s+PROVIDER/);
      expect(JSON.parse((await both(["presets", "github", "--json"])).there.stdout)).toMatchObject({
        name: "github",
      });
      await both(["presets", "github"]);
      for (const name of ["nope", "Not A Name"])
        expect((await both(["presets", name])).here).toMatchObject({
          code: 1,
          stderr: `error not_found: preset ${name} does not exist\n`,
        });
      // Any valid key reads it: a client key too.
      const clientKey = (
        await runCli(["apikey", "create", "--name", "presets", "--role", "client"], { env: remote })
      ).stdout.trim();
      const asClient = await runCli(["presets", "--json"], {
        env: { ...remote, TOKENWARDEN_API_KEY: clientKey },
      });
      expect(asClient.code).toBe(0);
      // Through a service it is the service's: a wrong key is refused, not answered locally.
      expect(
        await runCli(["presets"], { env: { ...remote, TOKENWARDEN_API_KEY: "not-a-key" } }),
      ).toMatchObject({ code: 1, stderr: "error unauthorized: this API key is not valid\n" });
    },
    MANY_RUNS_MS,
  );

  it(
    "authorize of a device grant: the code printed, the service polling",
    async () => {
      for (const args of [
        [...deviceIntegrationArgs(op, "tv"), "--scopes", "openid offline_access"],
        ["connection", "add", "tv-1", "--integration", "tv"],
        ["connection", "add", "tv-2", "--integration", "tv"],
        ["connection", "add", "tv-3", "--integration", "tv"],
      ])
        expect((await both(args)).here.code).toBe(0);

      /** Runs `authorize` on one side and answers on the provider's page as the person. */
      const authorize = async (
        env: Record<string, string>,
        id: string,
        answer: "approve" | "deny",
      ) => {
        const child = startCli(["authorize", id, "--timeout", "60"], { env });
        const line = await child.waitFor(/^\(or open \S+\)$/, "stderr");
        const uri = /^\(or open (\S+)\)$/.exec(line)?.[1] as string;
        expect(new URL(uri).origin).toBe(new URL(op.issuer).origin);
        await approveDeviceCode(uri, answer === "deny" ? { deny: true } : {});
        const code = await child.exited;
        return { code, stdout: child.lines(), lastError: child.lines("stderr").at(-1) };
      };
      for (const env of [local, remote])
        expect(await authorize(env, "tv-1", "approve")).toMatchObject({
          code: 0,
          stdout: ["tv-1: active"],
        });
      // The service holds the token it polled for.
      expect((await runCli(["token", "tv-1"], { env: remote })).code).toBe(0);

      const denied = await Promise.all([
        authorize(local, "tv-2", "deny"),
        authorize(remote, "tv-2", "deny"),
      ]);
      // The same code and status; the service's event words the refusal more briefly.
      for (const result of denied)
        expect(result).toMatchObject({
          code: 1,
          stdout: [],
          lastError: expect.stringMatching(/^error token_endpoint_error: .*access_denied/),
        });

      // Nobody answers: the same refusal to wait longer.
      const waited = await Promise.all(
        [local, remote].map((env) => runCli(["authorize", "tv-3", "--timeout", "2"], { env })),
      );
      for (const result of waited) {
        expect(result.code).toBe(1);
        expect(result.stderr.trimEnd().split("\n").at(-1)).toBe(
          "error timeout: not approved within 2 s",
        );
      }
    },
    MANY_RUNS_MS,
  );
});
