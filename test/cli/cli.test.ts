import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addBasicClient,
  addBasicWebClient,
  CLI,
  CLI_PROCESSES,
  localEnv,
  runCli,
  writeImportFile,
} from "../fixtures/cli.js";
import { sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";
import { loginAndConsent } from "../fixtures/interaction.js";
import {
  BASIC_CLIENT_SECRET,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { type PasswordServerFixture, startPasswordServer } from "../fixtures/password-server.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";

let op: OidcFixture;
let pw: PasswordServerFixture;
let api: QuirkServer;
let db: TestDatabase;
let env: Record<string, string>;

beforeAll(async () => {
  op = await startOidcProvider({ redirectUris: ["http://127.0.0.1/oauth/callback"] });
  pw = await startPasswordServer({
    clients: [
      {
        clientId: "pw-app",
        clientSecret: "pw-secret-value",
        grants: ["password", "refresh_token"],
      },
    ],
    users: [{ username: "ann", password: "ann-password-value" }],
  });
  api = await startQuirkServer();
  api.on("/api/orders", (req, res) =>
    json(res, 200, { auth: req.headers.authorization ?? null, method: req.method, body: req.body }),
  );
  db = await sqliteDatabase();
  env = localEnv(db);
});
afterAll(async () => {
  await op.close();
  await pw.close();
  await api.close();
  await db.drop();
});

const cli = (...args: string[]) => runCli(args, { env });

describe("the tokenwarden command", CLI_PROCESSES, () => {
  it("client credentials: add, print a bare token, refresh, call the API, see events, revoke", async () => {
    const add = await cli(
      ...addBasicClient(op, "cc", "--revocation-url", op.revocationUrl, "--scopes", "api:read"),
      ...["--api-base-url", api.url("/api")],
    );
    expect(add).toMatchObject({ code: 0, stdout: "integration cc saved\n" });
    expect(
      (await cli("connection", "add", "cc-1", "--integration", "cc", "--environment", "prod")).code,
    ).toBe(0);

    const token = await cli("token", "cc-1");
    expect(token.code).toBe(0);
    expect(token.stdout).toMatch(/^[\w-]{20,}\n$/); // the token and nothing else
    expect(token.stderr).toBe("");

    const refreshed = await cli("refresh", "cc-1");
    expect(refreshed.stdout).toMatch(/^cc-1: active, expires in /);
    const after = (await cli("token", "cc-1")).stdout.trim();
    expect(after).not.toBe(token.stdout.trim());

    const called = await cli(
      "call",
      "cc-1",
      "POST",
      "/orders",
      "--data",
      '{"qty":2}',
      "-H",
      "content-type: application/json",
    );
    expect(called.code).toBe(0);
    expect(JSON.parse(called.stdout)).toEqual({
      auth: `Bearer ${after}`,
      method: "POST",
      body: '{"qty":2}',
    });

    const events = await cli("events", "cc-1");
    expect(events.stdout.split("\n")[0]).toMatch(
      /^TIME\s+TRIGGER\s+ACTION\s+OUTCOME\s+HTTP\s+ERROR\s+MS$/,
    );
    expect(events.stdout).toMatch(/manual\s+obtain\s+success\s+200/);
    const eventsJson = JSON.parse((await cli("--json", "events", "cc-1")).stdout);
    expect(eventsJson.map((e: { trigger: string }) => e.trigger)).toEqual(["manual", "demand"]);

    const revoked = await cli("revoke", "cc-1");
    expect(revoked.stdout).toBe("cc-1: revoked\n");
    const shown = JSON.parse((await cli("connection", "show", "cc-1", "--json")).stdout);
    expect(shown).toMatchObject({ id: "cc-1", status: "revoked", clientSecret: { set: false } });

    const listed = await cli("integration", "list");
    expect(listed.stdout).toMatch(/cc\s+client_credentials\s+\S+\s+set/);
    expect(listed.stdout + (await cli("integration", "show", "cc")).stdout).not.toContain(
      BASIC_CLIENT_SECRET,
    );
  });

  it("password grant against oauth2-server", async () => {
    await cli(
      "integration",
      "add",
      "pw",
      "--grant-type",
      "password",
      "--token-url",
      pw.tokenUrl,
      "--client-id",
      "pw-app",
      "--client-secret",
      "pw-secret-value",
      "--client-auth",
      "body",
    );
    const add = await cli(
      "connection",
      "add",
      "pw-1",
      "--integration",
      "pw",
      "--username",
      "ann",
      "--password",
      "ann-password-value",
    );
    expect(add.stdout).toBe("connection pw-1 saved (active)\n");
    const token = await cli("--json", "token", "pw-1");
    expect(JSON.parse(token.stdout)).toMatchObject({
      tokenType: "Bearer",
      header: { name: "Authorization" },
    });
    const list = await cli("connection", "list", "--integration", "pw");
    expect(list.stdout).toMatch(/pw-1\s+pw\s+-\s+active\s+in \d+m/);
  });

  it("authorize completes through the loopback redirect (RFC 8252)", async () => {
    await cli(...addBasicWebClient(op, "web"));
    await cli("connection", "add", "web-1", "--integration", "web");
    expect((await cli("token", "web-1")).stderr).toMatch(/^error pending_authorization: /);

    const child = spawn(
      process.execPath,
      [CLI, "authorize", "web-1", "--no-open", "--timeout", "20"],
      {
        env: { PATH: process.env.PATH ?? "", ...env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    let url = "";
    for await (const line of createInterface({ input: child.stderr })) {
      if (line.trim().startsWith(op.authorizationUrl)) {
        url = line.trim();
        break;
      }
    }
    const redirect = new URL(url).searchParams.get("redirect_uri") ?? "";
    expect(redirect).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/oauth\/callback$/);
    const callback = await loginAndConsent(url);
    const page = await request(callback);
    expect(await page.body.text()).toContain("OAuth2 token received with success!");
    expect(await exited).toBe(0);
    expect(stdout).toBe("web-1: active\n");
    expect((await cli("token", "web-1")).code).toBe(0);
  });

  it("bad input names the field and exits non-zero", async () => {
    const bad = await cli(
      "integration",
      "add",
      "bad",
      "--grant-type",
      "client_credentials",
      "--token-url",
      "nope",
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("error invalid_config: tokenUrl: must be an absolute http(s) URL\n");
    const exists = await cli(
      "integration",
      "add",
      "cc",
      "--grant-type",
      "client_credentials",
      "--token-url",
      op.tokenUrl,
    );
    expect(exists.stderr).toMatch(/^error conflict: integration cc exists; add --replace/);
    const unknown = await cli("token", "nobody");
    expect(unknown).toMatchObject({
      code: 1,
      stderr: "error not_found: connection nobody does not exist\n",
    });
    const param = await cli("connection", "add", "p", "--integration", "cc", "--param", "novalue");
    expect(param.stderr).toBe("error invalid_config: param: novalue is not name=value\n");
    const usage = await cli("conection", "list");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^error invalid_config: unknown command 'conection'/);
  });

  it("imports a YAML file, and manages API keys", async () => {
    const file = join(db.files[0]!, "..", "import.yaml");
    await writeImportFile(file, op.tokenUrl);
    const missing = await cli("integration", "import", file);
    expect(missing.stderr).toContain("${IMPORT_SECRET}");
    const imported = await runCli(["integration", "import", file], {
      env: { ...env, IMPORT_SECRET: "s3" },
    });
    expect(imported.stdout).toBe("imported 1 integration(s), 1 connection(s)\n");

    const created = await cli("apikey", "create", "--name", "ci");
    expect(created.stdout).toMatch(/^tw_[\w-]+\n$/);
    const keys = JSON.parse((await cli("apikey", "list", "--json")).stdout) as Array<{
      id: string;
      name: string;
    }>;
    expect(keys.map((k) => k.name)).toContain("ci");
    expect(JSON.stringify(keys)).not.toContain(created.stdout.trim());
    const id = keys.find((k) => k.name === "ci")!.id;
    expect((await cli("apikey", "rm", id)).stdout).toBe(`API key ${id} deleted\n`);
  });

  it("has help with examples on every command", async () => {
    for (const command of [
      ["serve"],
      ["integration", "add"],
      ["connection", "add"],
      ["token"],
      ["call"],
      ["authorize"],
      ["events"],
      ["completion"],
    ]) {
      const help = await cli(...command, "--help");
      expect(help.code).toBe(0);
      expect(help.stdout).toContain("Examples:");
    }
  });
});
