import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CLI, runProcess } from "../fixtures/cli.js";
import { TEST_SECRET_KEY } from "../fixtures/databases.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";

/** The README's "Quick start with the CLI" block, run as it stands. */
let op: OidcFixture;
let api: QuirkServer;
let dir: string;

beforeAll(async () => {
  op = await startOidcProvider();
  api = await startQuirkServer();
  api.on("/api/orders", (req, res) =>
    json(res, 200, { orders: [], auth: req.headers.authorization ?? null }),
  );
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-quickstart-"));
});
afterAll(async () => {
  await op.close();
  await api.close();
  await rm(dir, { recursive: true, force: true });
});

async function quickStartBlock(): Promise<string> {
  const readme = await readFile("README.md", "utf8");
  const section = readme.slice(readme.indexOf("## Quick start with the CLI"));
  const match = /```sh\n([\s\S]*?)```/.exec(section);
  if (match?.[1] === undefined) throw new Error("README has no quick start block");
  return match[1];
}

it("the README's quick start works as written", async () => {
  const script = await quickStartBlock();
  // `tokenwarden` on the PATH is the built command.
  const bin = join(dir, "bin");
  await mkdir(bin, { recursive: true });
  await writeFile(
    join(bin, "tokenwarden"),
    `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`,
  );
  await chmod(join(bin, "tokenwarden"), 0o755);
  // --norc: with stdin on a socket, bash would read the system bashrc as if run by rshd.
  const result = await runProcess("bash", ["--norc", "-euo", "pipefail", "-c", script], {
    cwd: dir,
    env: {
      PATH: `${bin}:${process.env.PATH ?? ""}`,
      HOME: dir,
      TOKENWARDEN_SECRET_KEY: TEST_SECRET_KEY,
      TOKEN_URL: op.tokenUrl,
      REVOCATION_URL: op.revocationUrl,
      CLIENT_ID: BASIC_CLIENT_ID,
      CLIENT_SECRET: BASIC_CLIENT_SECRET,
      API_URL: api.url("/api"),
    },
  });
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  const lines = result.stdout.split("\n");
  expect(lines[0]).toBe("integration acme saved");
  expect(lines[1]).toBe("connection acme-prod saved (active)");
  const token = lines[2] ?? "";
  expect(token).toMatch(/^[\w-]{20,}$/);
  expect(JSON.parse(lines[3] ?? "")).toEqual({ orders: [], auth: `Bearer ${token}` });
  expect(result.stdout).toMatch(/demand\s+obtain\s+success\s+200/);
  expect(lines.at(-2)).toBe("acme-prod: revoked");
  // The database went where the block said.
  await expect(readFile(join(dir, "data", "quickstart.db"))).resolves.toBeInstanceOf(Buffer);
});
