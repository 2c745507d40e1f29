import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { request } from "undici";

/** Helpers shared by the benchmarks: child processes, the load generator, HTTP. */
export const ROOT = resolve(import.meta.dirname, "..");
export const CLI = join(ROOT, "dist/cli/main.js");
export const API_KEY = `bench-${randomBytes(12).toString("hex")}`;
export const SECRET_KEY = randomBytes(32).toString("base64");

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

export interface Started {
  child: ChildProcess;
  port: number;
  url: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** A line matching this names the port (group 1). */
  ready?: RegExp;
  /** Pin the process (every thread) to these CPUs, as `taskset -c` takes them. */
  cpu?: string | undefined;
  /** Arguments for node before the script (`--import tsx`). */
  nodeArgs?: string[];
  /** A command that runs node (valgrind and its options), as it is given the rest. */
  wrap?: string[];
  /** How long to wait for the ready line (60 s). */
  startTimeoutMs?: number;
}

/**
 * The CPUs the load generator and the servers under load run on: apart, so that the
 * generator cannot take the server's core (and the server's CPU time is its own).
 */
export const LOAD_CPU = process.env.BENCH_LOAD_CPU ?? "0";
export const SERVER_CPU = process.env.BENCH_SERVER_CPU ?? "1";

/** Starts `node <args>` and waits for a line matching `ready` (which names the port). */
export async function startProcess(args: string[], options: StartOptions = {}): Promise<Started> {
  const ready = options.ready ?? /listening (\d+)/;
  const node = [...(options.wrap ?? []), process.execPath, ...(options.nodeArgs ?? []), ...args];
  // taskset execs node in place: the child's pid is node's.
  const [command, ...argv] =
    options.cpu === undefined ? node : ["taskset", "-c", options.cpu, ...node];
  const child = spawn(command as string, argv, {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let output = "";
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no start in time: ${output.slice(-2000)}`)),
      options.startTimeoutMs ?? 60_000,
    );
    const onLine = (line: string) => {
      output += `${line}\n`;
      const match = ready.exec(line);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolvePort(Number(match[1]));
      }
    };
    createInterface({ input: child.stdout! }).on("line", onLine);
    createInterface({ input: child.stderr! }).on("line", onLine);
    child.on("exit", (code) => reject(new Error(`exited ${code}: ${output.slice(-2000)}`)));
  });
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once("exit", () => {
          children.delete(child);
          done();
        });
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
      }),
  };
}

export function startServer(mode: string, ...args: string[]): Promise<Started> {
  return startProcess(["bench/servers.mjs", mode, "0", ...args]);
}

/** A bench/servers.mjs server pinned to `cpu`. */
export function startPinnedServer(cpu: string, mode: string, ...args: string[]): Promise<Started> {
  return startProcess(["bench/servers.mjs", mode, "0", ...args], { cpu });
}

/** `tokenwarden serve` from the build, quiet, on the given database. */
export async function startTokenwarden(
  database: string,
  options: { env?: Record<string, string>; cpu?: string } = {},
): Promise<Started> {
  return startProcess(
    [CLI, "serve", "--port", "0", "--log-level", "warn", "--database", database],
    {
      env: { TOKENWARDEN_API_KEYS: API_KEY, TOKENWARDEN_SECRET_KEY: SECRET_KEY, ...options.env },
      ready: /Tokenwarden listening on http:\/\/127\.0\.0\.1:(\d+)/,
      cpu: options.cpu,
    },
  );
}

export async function tempSqlite(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `tokenwarden-bench-${name}-`));
  return `sqlite:${join(dir, "tokenwarden.db")}`;
}

export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  statuses: Record<string, number>;
}

export interface LoadOptions {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  connections?: number;
  durationMs?: number;
  requests?: number;
  burst?: boolean;
  startAt?: number;
}

/** Runs bench/load.mjs in its own process and returns what it measured. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const child = spawn(process.execPath, ["bench/load.mjs", JSON.stringify(options)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.add(child);
  let out = "";
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
  });
  await new Promise((done) => child.on("exit", done));
  children.delete(child);
  return JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as LoadResult;
}

export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const res = await request(`${base}${path}`, {
    method: method as "GET",
    headers: {
      authorization: `Bearer ${API_KEY}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await res.body.text();
  if (res.statusCode >= 400) throw new Error(`${method} ${path}: ${res.statusCode} ${text}`);
  return text === "" ? undefined : JSON.parse(text);
}

export async function tokensIssued(tokenServer: Started): Promise<number> {
  const res = await request(`${tokenServer.url}/count`);
  return ((await res.body.json()) as { issued: number }).issued;
}

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const ms = (n: number) => `${n.toFixed(2)} ms`;

/**
 * A token endpoint and a Tokenwarden service on a fresh SQLite file, with one client
 * credentials connection `bench-1` (integration fields may be added).
 */
export async function startWithConnection(
  name: string,
  integration: Record<string, unknown> = {},
  cpu?: string,
): Promise<{ as: Started; tw: Started; stop(): Promise<void> }> {
  const as = await startServer("token-server", "3600");
  const tw = await startTokenwarden(await tempSqlite(name), cpu === undefined ? {} : { cpu });
  await api(tw.url, "PUT", "/v1/integrations/bench", {
    grantType: "client_credentials",
    tokenUrl: `${as.url}/token`,
    clientId: "bench",
    clientSecret: "bench-secret",
    ...integration,
  });
  await api(tw.url, "PUT", "/v1/connections/bench-1", { integration: "bench" });
  return {
    as,
    tw,
    stop: async () => {
      await tw.stop();
      await as.stop();
    },
  };
}
