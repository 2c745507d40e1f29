import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addBasicClient,
  addBasicWebClient,
  CLI_PROCESSES,
  type CliResult,
  cliIn,
  localEnv,
  runCli,
  startCli,
  writeImportFile,
} from "../fixtures/cli.js";
import { sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";
import { loginAndConsent } from "../fixtures/interaction.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { freePort } from "../fixtures/ports.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { startTestService, type TestService } from "../fixtures/service.js";

/**
 * The remote CLI: with TOKENWARDEN_URL and TOKENWARDEN_API_KEY every command talks to a
 * running service (started here, in this process), and the same commands give the same
 * output and exit status as on the database (a second, separate one).
 */
const API_KEY = "remote-cli-test-key-0123456789";
let op: OidcFixture;
let api: QuirkServer;
let localDb: TestDatabase;
let service: TestService;
let local: Record<string, string>;
let remote: Record<string, string>;

beforeAll(async () => {
  const port = await freePort();
  op = await startOidcProvider({
    redirectUris: [`http://127.0.0.1:${port}/oauth/callback`],
  });
  api = await startQuirkServer();
  api.on("/api/orders", (req, res) =>
    json(res, 200, { auth: req.headers.authorization ?? null, method: req.method, body: req.body }),
  );
  api.on("/api/missing", (_req, res) => json(res, 404, { error: "no such order" }));
  localDb = await sqliteDatabase();
  service = await startTestService({ apiKey: API_KEY, settings: { port } });
  local = localEnv(localDb);
  // No database and no master key on the remote side: only the address and a key.
  remote = { TOKENWARDEN_URL: service.url, TOKENWARDEN_API_KEY: API_KEY };
});
afterAll(async () => {
  await service.close();
  await op.close();
  await api.close();
  await localDb.drop();
});

/** What may differ between two runs: tokens, times, key ids, durations. */
function normalize(result: CliResult): CliResult {
  const clean = (text: string) =>
    text
      .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "<time>")
      .replace(/tw_[\w-]+/g, "<api-key>")
      .replace(/"id": "[\w-]{8}"/g, '"id": "<id>"')
      .replace(/"(id|durationMs)": \d+/g, '"$1": 0')
      .replace(/Bearer [\w.-]{20,}/g, "Bearer <token>")
      .replace(/"accessToken": "[^"]+"/g, '"accessToken": "<token>"')
      .replace(/"value": "Bearer [^"]+"/g, '"value": "Bearer <token>"')
      .replace(/API key [\w-]{8} /g, "API key <id> ")
      .replace(/ \d+$/gm, " <ms>"); // the last column of an events table
  return { code: result.code, stdout: clean(result.stdout), stderr: clean(result.stderr) };
}

/** Runs the command on the database and through the service; both must agree. */
async function both(args: string[], input?: string): Promise<CliResult> {
  const options = (env: Record<string, string>) => ({
    env,
    ...(input === undefined ? {} : { input }),
  });
  const [here, there] = await Promise.all([
    runCli(args, options(local)),
    runCli(args, options(remote)),
  ]);
  expect(normalize(there), `tokenwarden ${args.join(" ")}`).toEqual(normalize(here));
  return here;
}

describe("the CLI through a service", CLI_PROCESSES, () => {
  it("gives the same output and exit status as on the database, command by command", async () => {
    const cc = [
      "integration",
      "add",
      "cc",
      "--grant-type",
      "client_credentials",
      "--token-url",
      op.tokenUrl,
      "--revocation-url",
      op.revocationUrl,
      "--client-id",
      BASIC_CLIENT_ID,
      "--client-secret-stdin",
      "--scopes",
      "api:read",
      "--api-base-url",
      api.url("/api"),
    ];
    expect(await both(cc, `${BASIC_CLIENT_SECRET}\n`)).toMatchObject({
      code: 0,
      stdout: "integration cc saved\n",
    });
    expect((await both(cc, `${BASIC_CLIENT_SECRET}\n`)).stderr).toMatch(
      /^error conflict: integration cc exists; add --replace/,
    );
    expect((await both(["integration", "show", "cc", "--json"])).stdout).toContain(
      '"clientSecret": {\n    "set": true',
    );
    expect(
      (await both(["connection", "add", "cc-1", "--integration", "cc", "--environment", "prod"]))
        .code,
    ).toBe(0);
    await both(["connection", "list"]);
    await both(["connection", "list", "--json", "--environment", "prod"]);

    const token = await both(["token", "cc-1", "--json"]);
    expect(JSON.parse(token.stdout)).toMatchObject({ tokenType: "Bearer", scope: "api:read" });
    expect((await both(["refresh", "cc-1"])).stdout).toMatch(/^cc-1: active, expires in /);
    const called = await both([
      "call",
      "cc-1",
      "POST",
      "/orders",
      "--data",
      '{"qty":2}',
      "-H",
      "content-type: application/json",
    ]);
    expect(JSON.parse(called.stdout)).toMatchObject({ method: "POST", body: '{"qty":2}' });
    // The API's own 404 is printed as it came, not taken for the service's.
    expect(await both(["call", "cc-1", "GET", "/missing", "--fail"])).toMatchObject({
      code: 22,
      stdout: '{"error":"no such order"}\n',
    });
    expect(JSON.parse((await both(["--json", "events", "cc-1"])).stdout)).toHaveLength(2);
    expect((await both(["events", "cc-1", "--limit", "1"])).stdout).toMatch(
      /manual\s+obtain\s+success\s+200/,
    );
    expect((await both(["revoke", "cc-1"])).stdout).toBe("cc-1: revoked\n");

    // Failures: the same code, message and exit status.
    expect(await both(["token", "nobody"])).toMatchObject({
      code: 1,
      stderr: "error not_found: connection nobody does not exist\n",
    });
    expect(JSON.parse((await both(["token", "nobody", "--json"])).stderr)).toEqual({
      error: { code: "not_found", message: "connection nobody does not exist" },
    });
    expect(
      await both([
        "integration",
        "add",
        "bad",
        "--grant-type",
        "client_credentials",
        "--token-url",
        "nope",
      ]),
    ).toMatchObject({
      code: 1,
      stderr: "error invalid_config: tokenUrl: must be an absolute http(s) URL\n",
    });
    expect((await both(["integration", "rm", "cc"])).stderr).toMatch(/^error conflict: /);
    expect((await both(["connection", "rm", "cc-1"])).stdout).toBe("connection cc-1 deleted\n");
    expect((await both(["integration", "rm", "cc"])).stdout).toBe("integration cc deleted\n");
  });

  it("imports a file, and manages API keys, through the service as on the database", async () => {
    const file = join(localDb.files[0] as string, "..", "import.yaml");
    await writeImportFile(file, op.tokenUrl);
    const imported = await Promise.all(
      [local, remote].map((env) =>
        runCli(["integration", "import", file], { env: { ...env, IMPORT_SECRET: "s3" } }),
      ),
    );
    for (const result of imported)
      expect(result.stdout).toBe("imported 1 integration(s), 1 connection(s)\n");
    await both(["connection", "show", "imported-1"]);

    const created = await both(["apikey", "create", "--name", "ci", "--role", "client"]);
    expect(created.stdout).toMatch(/^tw_[\w-]+\n$/);
    const keys = JSON.parse((await both(["apikey", "list", "--json"])).stdout) as Array<{
      name: string;
    }>;
    expect(keys.map((k) => k.name)).toEqual(["ci"]);

    // The new client key works against the service, and may not create keys.
    const remoteKeys = JSON.parse(
      (await runCli(["apikey", "list", "--json"], { env: remote })).stdout,
    ) as Array<{ id: string }>;
    const clientKey = (
      await runCli(["apikey", "create", "--name", "reader", "--role", "client"], { env: remote })
    ).stdout.trim();
    const asClient = { ...remote, TOKENWARDEN_API_KEY: clientKey };
    expect((await runCli(["connection", "list"], { env: asClient })).code).toBe(0);
    expect(await runCli(["apikey", "list"], { env: asClient })).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^error forbidden: /),
    });
    const id = remoteKeys[0]?.id as string;
    expect((await runCli(["apikey", "rm", id], { env: remote })).stdout).toBe(
      `API key ${id} deleted\n`,
    );
  });

  it("refuses the local-only commands plainly, and a missing key or an unreachable service", async () => {
    for (const command of [["serve"], ["key", "rotate"]]) {
      const refused = await runCli(command, { env: remote });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        /^error invalid_config: serviceUrl: this command .* unset TOKENWARDEN_URL/,
      );
    }
    expect((await runCli(["key", "generate"], { env: remote })).stdout).toMatch(/^[\w+/]{43}=\n$/);
    expect(
      await runCli(["integration", "list"], { env: { TOKENWARDEN_URL: service.url } }),
    ).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^error invalid_config: TOKENWARDEN_API_KEY: /),
    });
    const wrongKey = await runCli(["integration", "list"], {
      env: { ...remote, TOKENWARDEN_API_KEY: "not-a-key" },
    });
    expect(wrongKey).toMatchObject({
      code: 1,
      stderr: "error unauthorized: this API key is not valid\n",
    });
    expect(wrongKey.stderr).not.toContain("not-a-key");
    const closed = await freePort();
    const away = await runCli(
      ["integration", "list", "--service-url", `http://127.0.0.1:${closed}`],
      {
        env: { TOKENWARDEN_API_KEY: API_KEY },
      },
    );
    expect(away).toMatchObject({
      code: 1,
      stderr: `error network_error: cannot reach the service at http://127.0.0.1:${closed}: ECONNREFUSED\n`,
    });
  });

  it("authorize: the service's redirect URL receives the answer, the command waits for it", async () => {
    const run = cliIn(remote);
    await run(...addBasicWebClient(op, "web"));
    await run("connection", "add", "web-1", "--integration", "web");
    const child = startCli(["authorize", "web-1", "--no-open", "--timeout", "30"], { env: remote });
    const url = (await child.waitFor(/^\s+http/, "stderr")).trim();
    expect(new URL(url).searchParams.get("redirect_uri")).toBe(`${service.url}/oauth/callback`);
    const callback = await loginAndConsent(url);
    const page = await request(callback);
    expect(page.statusCode).toBe(200);
    await page.body.text();
    expect(await child.exited).toBe(0);
    expect(child.lines()).toEqual(["web-1: active"]);
    expect((await run("token", "web-1")).code).toBe(0);
  });

  it("events --follow: the service's event stream, kept to the connection", async () => {
    const run = cliIn(remote);
    await run(...addBasicClient(op, "follow"));
    await run("connection", "add", "follow-1", "--integration", "follow");
    await run("connection", "add", "other-1", "--integration", "follow");
    await run("token", "follow-1");
    const child = startCli(["events", "follow-1", "--follow", "--json"], { env: remote });
    // A client key may not read the stream (admin only): it follows the connection's page.
    const clientKey = (
      await run("apikey", "create", "--name", "follower", "--role", "client")
    ).stdout.trim();
    const asClient = startCli(["events", "follow-1", "--follow", "--json"], {
      env: { ...remote, TOKENWARDEN_API_KEY: clientKey },
    });
    await asClient.waitFor(/"trigger":"demand"/);
    const first = JSON.parse(await child.waitFor(/"trigger":"demand"/));
    expect(first).toMatchObject({ connectionId: "follow-1", action: "obtain" });
    await run("token", "other-1");
    await run("refresh", "follow-1");
    const next = JSON.parse(await child.waitFor(/"trigger":"manual"/));
    expect(next).toMatchObject({ connectionId: "follow-1", action: "obtain", outcome: "success" });
    expect(next.id).toBeGreaterThan(first.id);
    expect(await child.stop("SIGINT")).toBe(0);
    expect(JSON.parse(await asClient.waitFor(/"trigger":"manual"/))).toEqual(next);
    expect(await asClient.stop("SIGTERM")).toBe(0);
    expect(asClient.lines().filter((l) => l !== "")).toHaveLength(2);
    // Only this connection's events, each once.
    const seen = child
      .lines()
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l));
    expect(seen.map((e) => e.connectionId)).toEqual(["follow-1", "follow-1"]);
  });
});
