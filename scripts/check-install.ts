/**
 * Installs Tokenwarden the ways its users and its image do, from nothing, and checks
 * the result serves. Run by CI (.ci/run); by hand:
 *
 *   node --import tsx scripts/check-install.ts tarball
 *     npm pack (prepack builds), `npm install <tarball>` into an empty folder with the
 *     registry, then require() and import of "tokenwarden" there, and `tokenwarden serve`.
 *   node --import tsx scripts/check-install.ts release
 *     what the Dockerfile runs: deploy/build-release.sh on a copy of the tracked files,
 *     then `node dist/cli/main.js serve` from the result and the image's health check.
 *
 * Each serves on a free port with a new SQLite database and must answer /healthz,
 * /readyz, the API with a key and the admin page, then stop cleanly on SIGTERM.
 * Child processes run on this script's Node.js (process.execPath, and first on PATH).
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { freePort } from "../test/fixtures/ports.js";

const root = resolve(import.meta.dirname, "..");
const nodeBin = dirname(process.execPath);
/** Children see this Node.js first, and no TOKENWARDEN_* setting of the caller's. */
const childEnv: NodeJS.ProcessEnv = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("TOKENWARDEN_")),
  ),
  PATH: `${nodeBin}:${process.env.PATH ?? ""}`,
};

function step(message: string): void {
  console.log(`check-install: ${message}`);
}

function run(command: string, args: string[], cwd: string): string {
  return execFileSync(command, args, {
    cwd,
    env: childEnv,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
}

async function checkTarball(work: string): Promise<void> {
  step(`npm pack in ${root} (prepack builds dist)`);
  const packed = JSON.parse(
    run("npm", ["pack", "--json", "--pack-destination", work], root),
  ) as Array<{ filename: string }>;
  const tarball = join(work, packed[0]?.filename ?? "");
  const app = join(work, "app");
  mkdirSync(app);
  step(`npm install ${tarball} into the empty ${app}`);
  const install = spawnSync("npm", ["install", "--no-audit", "--no-fund", tarball], {
    cwd: app,
    env: childEnv,
    encoding: "utf8",
  });
  process.stdout.write(install.stdout);
  process.stderr.write(install.stderr);
  if (install.status !== 0) throw new Error(`npm install exited ${install.status}`);
  // Without this project's lock and overrides, a dependency's newest version may need a
  // newer Node.js than this one; npm only warns, so the check must look.
  if (install.stderr.includes("EBADENGINE"))
    throw new Error(
      `npm install pulled a package that does not support Node.js ${process.version}`,
    );

  const report = "console.log(typeof tw.Tokenwarden, typeof tw.parseIntegration)";
  writeFileSync(join(app, "load.cjs"), `const tw = require("tokenwarden");\n${report};\n`);
  writeFileSync(join(app, "load.mjs"), `import * as tw from "tokenwarden";\n${report};\n`);
  for (const file of ["load.cjs", "load.mjs"]) {
    const out = run(process.execPath, [file], app).trim();
    if (out !== "function function") throw new Error(`${file} printed ${JSON.stringify(out)}`);
    step(`${file}: the package loads by name`);
  }
  await serveAndProbe(join(app, "node_modules", "tokenwarden", "dist", "cli", "main.js"), app);
}

async function checkRelease(work: string): Promise<void> {
  // The build context of the Dockerfile: the tracked files as they are now.
  const source = join(work, "context");
  const tracked = run("git", ["ls-files", "-z"], root).split("\0").filter(Boolean);
  for (const file of tracked) cpSync(join(root, file), join(source, file), { recursive: true });
  const target = join(work, "opt", "tokenwarden");
  step(`deploy/build-release.sh ${source} ${target}`);
  execFileSync("sh", ["deploy/build-release.sh", source, target], {
    cwd: source,
    env: childEnv,
    stdio: "inherit",
  });
  const shipped = readdirSync(join(target, "node_modules"));
  if (shipped.includes("better-sqlite3") || shipped.includes("typescript"))
    throw new Error(`the release holds a dev or optional package: ${shipped.join(" ")}`);
  await serveAndProbe(join(target, "dist", "cli", "main.js"), work, {
    healthcheck: join(target, "deploy", "healthcheck.mjs"),
  });
}

async function serveAndProbe(
  main: string,
  cwd: string,
  options: { healthcheck?: string } = {},
): Promise<void> {
  const port = await freePort();
  const apiKey = `tw_check_${randomBytes(16).toString("hex")}`;
  const database = `sqlite:${join(cwd, "data", "tokenwarden.db")}`;
  step(`${process.execPath} ${main} serve on 127.0.0.1:${port} with ${database}`);
  const child = spawn(process.execPath, [main, "serve"], {
    cwd,
    env: {
      ...childEnv,
      TOKENWARDEN_HOST: "127.0.0.1",
      TOKENWARDEN_PORT: String(port),
      TOKENWARDEN_DATABASE_URL: database,
      TOKENWARDEN_API_KEYS: apiKey,
      TOKENWARDEN_LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  try {
    await waitFor(
      () => output.includes("Tokenwarden listening on"),
      exited,
      () => output,
    );
    const base = `http://127.0.0.1:${port}`;
    await expectStatus(`${base}/healthz`, 200);
    await expectStatus(`${base}/readyz`, 200);
    await expectStatus(`${base}/v1/integrations`, 401);
    await expectStatus(`${base}/v1/integrations`, 200, { authorization: `Bearer ${apiKey}` });
    await expectStatus(`${base}/`, 200);
    if (options.healthcheck !== undefined) {
      const code = healthcheck(options.healthcheck, port);
      if (code !== 0) throw new Error(`the image's health check exited ${code} on a live service`);
      step("the image's health check passes");
    }
  } finally {
    child.kill("SIGTERM");
  }
  const code = await exited;
  if (code !== 0) throw new Error(`serve exited ${code} on SIGTERM:\n${output.slice(-4000)}`);
  step("serve stopped cleanly on SIGTERM");
  if (options.healthcheck !== undefined && healthcheck(options.healthcheck, port) === 0)
    throw new Error("the image's health check passes with the service stopped");
}

function healthcheck(script: string, port: number): number {
  try {
    execFileSync(process.execPath, [script], {
      env: { ...childEnv, TOKENWARDEN_PORT: String(port) },
      stdio: "ignore",
    });
    return 0;
  } catch (error) {
    return (error as { status?: number }).status ?? 1;
  }
}

async function expectStatus(url: string, status: number, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  await res.arrayBuffer();
  if (res.status !== status) throw new Error(`GET ${url}: ${res.status}, expected ${status}`);
  step(`GET ${new URL(url).pathname} -> ${res.status}`);
}

async function waitFor(
  ready: () => boolean,
  exited: Promise<number | null>,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  let gone: number | null | undefined;
  void exited.then((code) => {
    gone = code;
  });
  while (!ready()) {
    if (gone !== undefined)
      throw new Error(`serve exited (${gone}) before listening:\n${output()}`);
    if (Date.now() > deadline) throw new Error(`serve did not start in 60 s:\n${output()}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

const mode = process.argv[2];
if (mode !== "tarball" && mode !== "release") {
  console.error("usage: check-install.ts tarball|release");
  process.exit(2);
}
const work = mkdtempSync(join(tmpdir(), `tokenwarden-${mode}-`));
const started = Date.now();
try {
  await (mode === "tarball" ? checkTarball(work) : checkRelease(work));
  step(
    `${mode}: all good on Node.js ${process.version} in ${Math.round((Date.now() - started) / 1000)} s`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
