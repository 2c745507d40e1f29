import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import {
  API_KEY,
  api,
  CLI,
  SECRET_KEY,
  type Started,
  startProcess,
  startServer,
  startTokenwarden,
  tempSqlite,
} from "./lib.js";

/**
 * Instructions per request, counted by valgrind's callgrind: stable where wall-clock
 * and CPU time are not (a shared machine, frequency scaling), and the same unit for
 * the bare servers and for Tokenwarden. Each server runs under callgrind; after a
 * warm-up (so that V8 has optimised the hot path) its counters are zeroed, a fixed
 * number of requests is sent (8 at a time, keep-alive), and the counters are dumped:
 * every instruction the process ran meanwhile (all threads: GC and the compiler too),
 * less what as long a time idle costs, divided by the requests. Slow (each server runs ~50× slower), so off by default:
 * `npm run bench -- instructions`.
 */
const WARMUP = Number(process.env.BENCH_INSTR_WARMUP ?? 2000);
const MEASURED = Number(process.env.BENCH_INSTR_REQUESTS ?? 3000);

interface Counted {
  name: string;
  /** Less what the same time idle costs. */
  perRequest: number;
  idlePerRequest: number;
}

/** The instructions in callgrind's `n`th dump (callgrind.out.<pid>.<n>). */
async function dumped(dir: string, n: number): Promise<number> {
  const file = (await readdir(dir)).find((f) => f.endsWith(`.${n}`) && /\.\d+\.\d+$/.test(f));
  if (file === undefined) throw new Error(`callgrind wrote no dump ${n} in ${dir}`);
  const totals = /^(?:summary|totals): (\d+)/m.exec(await readFile(join(dir, file), "utf8"));
  return Number(totals?.[1] ?? Number.NaN);
}

async function underCallgrind(args: string[], env: Record<string, string>, ready?: RegExp) {
  const out = await mkdtemp(join(tmpdir(), "tokenwarden-callgrind-"));
  const started = await startProcess(args, {
    env,
    ...(ready === undefined ? {} : { ready }),
    startTimeoutMs: 600_000,
    wrap: [
      "valgrind",
      "--tool=callgrind",
      "--dump-instr=no",
      "--collect-jumps=no",
      `--callgrind-out-file=${join(out, "callgrind.out.%p")}`,
    ],
  });
  return { started, out };
}

async function control(pid: number, flag: "-z" | "-d"): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn("callgrind_control", [flag, String(pid)], { stdio: "ignore" });
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`callgrind_control ${flag}: ${code}`)),
    );
  });
}

/** Sends `count` requests, `concurrency` at a time, each expected to answer 200. */
async function send(url: string, headers: Record<string, string>, count: number): Promise<void> {
  const target = new URL(url);
  const pool = new Pool(target.origin, { connections: 8 });
  let left = count;
  const worker = async () => {
    while (left > 0) {
      left--;
      const res = await pool.request({
        method: "GET",
        path: `${target.pathname}${target.search}`,
        headers,
      });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await pool.close();
}

async function count(
  name: string,
  server: { started: Started; out: string },
  url: string,
  headers: Record<string, string> = {},
): Promise<Counted> {
  const pid = server.started.child.pid!;
  await send(url, headers, WARMUP);
  await control(pid, "-z");
  const t0 = performance.now();
  await send(url, headers, MEASURED);
  const loadedMs = performance.now() - t0;
  await control(pid, "-d");
  // What the server does on its own meanwhile (timers: a scheduler tick, a poll) runs
  // per second, not per request, and under valgrind the requests take long: as much
  // idle time is counted next, and taken off.
  await new Promise((done) => setTimeout(done, loadedMs));
  await control(pid, "-d");
  const loaded = await dumped(server.out, 1);
  const idle = await dumped(server.out, 2);
  await server.started.stop();
  return { name, perRequest: (loaded - idle) / MEASURED, idlePerRequest: idle / MEASURED };
}

export async function instructions(): Promise<string> {
  const rows: Counted[] = [];
  const as = await startServer("token-server", "3600");
  const upstream = await startServer("api");
  try {
    // The database is set up by a plain process; the one measured starts on it.
    const database = await tempSqlite("instructions");
    const setup = await startTokenwarden(database);
    await api(setup.url, "PUT", "/v1/integrations/bench", {
      grantType: "client_credentials",
      tokenUrl: `${as.url}/token`,
      clientId: "bench",
      clientSecret: "bench-secret",
      apiBaseUrl: upstream.url,
    });
    await api(setup.url, "PUT", "/v1/connections/bench-1", { integration: "bench" });
    const body = JSON.stringify(await api(setup.url, "GET", "/v1/connections/bench-1/token"));
    const token = (JSON.parse(body) as { accessToken: string }).accessToken;
    await setup.stop();
    const auth = { authorization: `Bearer ${API_KEY}` };
    const twEnv = { TOKENWARDEN_API_KEYS: API_KEY, TOKENWARDEN_SECRET_KEY: SECRET_KEY };
    const twArgs = [CLI, "serve", "--port", "0", "--log-level", "warn", "--database", database];
    const twReady = /Tokenwarden listening on http:\/\/127\.0\.0\.1:(\d+)/;

    const servers = (mode: string, ...rest: string[]) =>
      underCallgrind(["bench/servers.mjs", mode, "0", ...rest], {});
    const cases: Record<string, () => Promise<Counted>> = {
      "bare-json": async () => {
        const s = await servers("bare-json", body);
        return count("bare node:http, token body", s, `${s.started.url}/`);
      },
      "bare-fastify": async () => {
        const s = await servers("bare-fastify", body);
        return count("bare Fastify route, token body", s, `${s.started.url}/`);
      },
      "token-read": async () => {
        const s = await underCallgrind(twArgs, twEnv, twReady);
        const url = `${s.started.url}/v1/connections/bench-1/token`;
        return count("Tokenwarden token read", s, url, auth);
      },
      "bare-proxy": async () => {
        const s = await servers("bare-proxy", upstream.url, token);
        return count("bare undici proxy", s, `${s.started.url}/orders?page=1`);
      },
      proxy: async () => {
        const s = await underCallgrind(twArgs, twEnv, twReady);
        const url = `${s.started.url}/v1/proxy/bench-1/orders?page=1`;
        return count("Tokenwarden proxy", s, url, auth);
      },
    };
    // BENCH_INSTR_CASES=token-read,proxy runs only those.
    const chosen = process.env.BENCH_INSTR_CASES?.split(",") ?? Object.keys(cases);
    for (const name of chosen) {
      const run = cases[name];
      if (run === undefined) throw new Error(`unknown case ${name}: ${Object.keys(cases)}`);
      rows.push(await run());
    }
  } finally {
    await upstream.stop();
    await as.stop();
  }
  return [
    "### Instructions per request (callgrind)",
    "",
    `${MEASURED} requests after ${WARMUP} to warm up, 8 at a time; every thread of the server counted, less as long a time idle (shown apart, per request).`,
    "",
    "| Server | Instructions per request | Idle, per request |",
    "| --- | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${Math.round(r.perRequest).toLocaleString("en-US")} | ${Math.round(r.idlePerRequest).toLocaleString("en-US")} |`,
    ),
    "",
  ].join("\n");
}
