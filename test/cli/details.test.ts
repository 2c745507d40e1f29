import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addBasicClient,
  CLI,
  CLI_PROCESSES,
  localEnv,
  runCli,
  runProcess,
  startCli,
} from "../fixtures/cli.js";
import { sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";
import { type OidcFixture, startOidcProvider } from "../fixtures/oidc-provider.js";
import { type PasswordServerFixture, startPasswordServer } from "../fixtures/password-server.js";

/**
 * The command line as a person or a script meets it: secrets piped on stdin, errors as
 * JSON under --json, a spinner only on a terminal, shell completion, and events
 * followed as other processes record them.
 */
const run = promisify(execFile);
let op: OidcFixture;
let pw: PasswordServerFixture;
let db: TestDatabase;
let env: Record<string, string>;

beforeAll(async () => {
  op = await startOidcProvider();
  pw = await startPasswordServer({
    clients: [{ clientId: "pw-app", clientSecret: "pw-secret", grants: ["password"] }],
    users: [{ username: "ann", password: "ann-password-value" }],
  });
  db = await sqliteDatabase();
  env = localEnv(db);
  const added = await cli(...addBasicClient(op, "cc"));
  expect(added.code).toBe(0);
  expect((await cli("connection", "add", "cc-1", "--integration", "cc")).code).toBe(0);
});
afterAll(async () => {
  await op.close();
  await pw.close();
  await db.drop();
});

const cli = (...args: string[]) => runCli(args, { env });
const piped = (input: string, ...args: string[]) => runCli(args, { env, input });
const pwIntegration = (key: string) => [
  "integration",
  "add",
  key,
  "--grant-type",
  "password",
  "--token-url",
  pw.tokenUrl,
  "--client-id",
  "pw-app",
  "--client-auth",
  "body",
];

describe("secrets on stdin", CLI_PROCESSES, () => {
  it("reads --client-secret-stdin and --password-stdin, and the tokens prove it", async () => {
    expect((await piped("pw-secret\n", ...pwIntegration("pw"), "--client-secret-stdin")).code).toBe(
      0,
    );
    const added = await piped(
      "ann-password-value\n",
      "connection",
      "add",
      "pw-1",
      "--integration",
      "pw",
      "--username",
      "ann",
      "--password-stdin",
    );
    expect(added).toMatchObject({ code: 0, stderr: "" });
    const token = await cli("token", "pw-1");
    expect(token).toMatchObject({ code: 0, stderr: "" });
    // Nothing read from stdin is ever echoed.
    expect(added.stdout + token.stdout).not.toContain("ann-password-value");
  });

  it("a secret that would be asked for, without a terminal, is an error, never silently left out", async () => {
    const secretless = await piped("pw-secret\n", ...pwIntegration("pw-2"));
    expect(secretless).toMatchObject({
      code: 1,
      stderr:
        "error invalid_config: clientSecret: not given, and stdin is not a terminal to ask on: pipe it with --client-secret-stdin, or give --client-secret, or --no-client-secret for a public client\n",
    });
    expect((await cli("integration", "show", "pw-2")).stderr).toMatch(/^error not_found: /);
    expect((await piped("", ...pwIntegration("pw-2"), "--no-client-secret")).code).toBe(0);
    expect(JSON.parse((await cli("integration", "show", "pw-2", "--json")).stdout)).toMatchObject({
      clientSecret: { set: false },
    });

    const passwordless = await piped(
      "ann-password-value\n",
      "connection",
      "add",
      "pw-2",
      "--integration",
      "pw",
      "--username",
      "ann",
    );
    expect(passwordless.code).toBe(1);
    expect(passwordless.stderr).toMatch(
      /^error invalid_config: password: not given, .*--password-stdin/,
    );
    expect((await cli("connection", "show", "pw-2")).stderr).toMatch(/^error not_found: /);
  });

  it("refuses an empty stdin, two secrets from one stdin, and a flag and its -stdin together", async () => {
    expect((await piped("\n", ...pwIntegration("pw-3"), "--client-secret-stdin")).stderr).toBe(
      "error invalid_config: clientSecret: --client-secret-stdin: stdin was empty\n",
    );
    const two = await piped(
      "x\n",
      "connection",
      "add",
      "pw-3",
      "--integration",
      "pw",
      "--password-stdin",
      "--client-secret-stdin",
    );
    expect(two.stderr).toBe(
      "error invalid_config: stdin: only one secret can be read from stdin; given --client-secret-stdin and --password-stdin\n",
    );
    const both = await piped(
      "x\n",
      ...pwIntegration("pw-3"),
      "--client-secret",
      "y",
      "--client-secret-stdin",
    );
    expect(both.stderr).toBe(
      "error invalid_config: clientSecret: give --client-secret or --client-secret-stdin, not both\n",
    );
  });
});

describe("errors under --json", CLI_PROCESSES, () => {
  it("are one JSON object on stderr, with the same exit status", async () => {
    const missing = await cli("--json", "token", "nobody");
    expect(missing).toMatchObject({ code: 1, stdout: "" });
    expect(JSON.parse(missing.stderr)).toEqual({
      error: { code: "not_found", message: "connection nobody does not exist" },
    });
    const bad = await cli(
      "integration",
      "add",
      "bad",
      "--grant-type",
      "client_credentials",
      "--token-url",
      "nope",
      "--json",
    );
    expect(JSON.parse(bad.stderr)).toEqual({
      error: {
        code: "invalid_config",
        message: "tokenUrl: must be an absolute http(s) URL",
        field: "tokenUrl",
        issues: [{ field: "tokenUrl", message: "must be an absolute http(s) URL" }],
      },
    });
    const usage = await cli("--json", "conection", "list");
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr)).toMatchObject({
      error: {
        code: "invalid_config",
        message: expect.stringMatching(/^unknown command 'conection'/),
      },
    });
  });
});

describe("the spinner", CLI_PROCESSES, () => {
  /** Runs the CLI with a terminal for stdin, stdout and stderr (util-linux `script`). */
  const onTerminal = (args: string) =>
    runProcess("script", ["-qec", `${process.execPath} ${CLI} ${args}`, "/dev/null"], { env });

  it("turns on a terminal while a slow command runs, and is cleared before the answer", async () => {
    const shown = await onTerminal("refresh cc-1");
    expect(shown.code).toBe(0);
    const clearLine = "\r\u001b[K";
    expect(shown.stdout).toContain(`⠋ Refreshing cc-1...${clearLine}`);
    expect(shown.stdout).toMatch(new RegExp(`${clearLine.replace("[", "\\[")}cc-1: .*active`));
  });

  it("never shows in a pipe or under --json", async () => {
    const piped = await cli("refresh", "cc-1");
    expect(piped).toMatchObject({ code: 0, stderr: "" });
    const json = await onTerminal("refresh cc-1 --json");
    expect(json.stdout).not.toContain("Refreshing");
    expect(JSON.parse(json.stdout.replaceAll("\r\n", "\n"))).toMatchObject({ id: "cc-1" });
  });
});

describe("completion", CLI_PROCESSES, () => {
  /** What bash offers after `words` (the last one being completed). */
  async function complete(script: string, words: string[]): Promise<string[]> {
    const line = words.map((w) => `'${w}'`).join(" ");
    const { stdout } = await run("bash", [
      "-c",
      `${script}\nCOMP_WORDS=(${line}); COMP_CWORD=${words.length - 1}; _tokenwarden; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ]);
    return stdout.split("\n").filter((l) => l !== "");
  }

  it("bash: completes commands, subcommands and their options from the command tree", async () => {
    const script = (await cli("completion", "bash")).stdout;
    expect(await complete(script, ["tokenwarden", "connecti"])).toEqual(["connection"]);
    expect(await complete(script, ["tokenwarden", "connection", ""])).toEqual(
      expect.arrayContaining(["add", "list", "show", "rm"]),
    );
    expect(
      await complete(script, [
        "tokenwarden",
        "connection",
        "add",
        "x",
        "--integration",
        "y",
        "--pass",
      ]),
    ).toEqual(["--password", "--password-stdin"]);
    expect(await complete(script, ["tokenwarden", "--json", "events", "x", "--fo"])).toEqual([
      "--follow",
    ]);
    expect(await complete(script, ["tokenwarden", "completion", ""])).toEqual(
      expect.arrayContaining(["bash", "zsh", "fish"]),
    );
  });

  it("zsh and fish: every command path is there; an unknown shell is refused", async () => {
    const zsh = (await cli("completion", "zsh")).stdout;
    const fish = (await cli("completion", "fish")).stdout;
    expect(zsh.startsWith("#compdef tokenwarden\n")).toBe(true);
    for (const path of [
      "integration add",
      "connection add",
      "events",
      "apikey create",
      "key rotate",
    ]) {
      expect(zsh).toContain(`'${path}') reply=(`);
      expect(fish).toContain(`__tokenwarden_at \\'${path}\\'`);
    }
    expect(zsh).toContain("'--password-stdin:read the password from stdin'");
    expect(fish).toContain("-l password-stdin -d 'read the password from stdin'");
    expect((await cli("completion", "tcsh")).stderr).toBe(
      "error invalid_config: shell: must be one of bash, zsh, fish\n",
    );
  });
});

describe("events --follow on the database", CLI_PROCESSES, () => {
  it("prints the history, then the events other processes record, until Ctrl-C", async () => {
    await cli("connection", "add", "follow-1", "--integration", "cc");
    await cli("token", "follow-1");
    const child = startCli(["events", "follow-1", "--follow"], { env });
    await child.waitFor(/^TIME\s+TRIGGER/);
    await child.waitFor(/demand\s+obtain\s+success/);
    // Another process (the scheduler's stand-in) refreshes: the follower reads it from the table.
    expect((await cli("refresh", "follow-1")).code).toBe(0);
    await child.waitFor(/manual\s+obtain\s+success\s+200/);
    expect(await child.stop("SIGINT")).toBe(0);
    expect(child.lines().filter((l) => l !== "")).toHaveLength(3);
  });
});
