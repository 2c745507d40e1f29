import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
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
 * the bare servers and for Tokenwarden. Each server runs under callgrind with counting
 * off; a long warm-up (BENCH_INSTR_WARMUP requests, uncounted) lets V8 finish
 * optimising the hot path, then counting is switched on, a fixed number of requests is
 * sent (8 at a time, keep-alive) and the counters are dumped: every instruction the
 * process ran meanwhile, on every thread (the GC's too), less what as long a time idle
 * costs and less V8's optimising compiler (see `threadCounts`), divided by the
 * requests. Slow
 * (each server runs ~50× slower), so off by default: `npm run bench -- instructions`.
 */
const WARMUP = Number(process.env.BENCH_INSTR_WARMUP ?? 100_000);
const MEASURED = Number(process.env.BENCH_INSTR_REQUESTS ?? 3000);

interface Counted {
  name: string;
  /** Less what the same time idle costs, and less the compiler. */
  perRequest: number;
  idlePerRequest: number;
  /** What the compiler ran meanwhile (left out of both counts). */
  compilerPerRequest: number;
}

/**
 * The entry point of a job of V8's optimising compiler, TurboFan (`RunInternal` on
 * Node 20, `Run` on Node 22, whose other optimising compiler, Maglev, is off by
 * default): everything run under it is compilation.
 */
const COMPILE_JOB = /OptimizingCompileDispatcher::CompileTask::/;

/**
 * One thread's dump: all its instructions, and those run under a compile job.
 *
 * Why not drop "the compiler's thread": V8 has none of its own. Its compile jobs run on
 * Node's pool of platform worker threads, and so do parts of the GC (scavenges,
 * concurrent marking and sweeping) that the requests cause: a whole worker thread is
 * a mix of both. So the compiler is taken out by what it runs, whichever thread ran it:
 * the instructions of every function matching COMPILE_JOB plus the inclusive cost of
 * its calls into other functions (a call between two matching functions is not counted
 * twice). In callgrind's format (strings uncompressed) a cost line is "<line> <Ir>";
 * under `fn=` it is that function's own cost, and right after `cfn=`/`calls=` it is the
 * inclusive cost of those calls.
 */
function threadCounts(dump: string): { total: number; compiler: number } {
  let total = 0;
  let compiler = 0;
  let inJob = false; // the current `fn=` matches COMPILE_JOB
  let calleeInJob = false;
  let callCost = false; // the next cost line is a call's inclusive cost
  for (const line of dump.split("\n")) {
    if (line.startsWith("fn=")) inJob = COMPILE_JOB.test(line);
    else if (line.startsWith("cfn=")) calleeInJob = COMPILE_JOB.test(line);
    else if (line.startsWith("calls=")) callCost = true;
    else if (/^[-+*\d]/.test(line)) {
      const ir = Number(line.split(" ")[1] ?? 0);
      if (callCost) {
        if (inJob && !calleeInJob) compiler += ir;
        callCost = false;
      } else {
        total += ir;
        if (inJob) compiler += ir;
      }
    }
  }
  return { total, compiler };
}

/** Callgrind's `n`th dump, over every thread (callgrind.out.<pid>.<n>-<thread>). */
async function dumped(dir: string, n: number): Promise<{ total: number; compiler: number }> {
  const files = (await readdir(dir)).filter((f) => new RegExp(`\\.\\d+\\.${n}-\\d+$`).test(f));
  if (files.length === 0) throw new Error(`callgrind wrote no dump ${n} in ${dir}`);
  const sum = { total: 0, compiler: 0 };
  for (const file of files) {
    const thread = threadCounts(await readFile(join(dir, file), "utf8"));
    sum.total += thread.total;
    sum.compiler += thread.compiler;
  }
  return sum;
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
      "--instr-atstart=no", // nothing counted until `callgrind_control -i on`
      "--separate-threads=yes", // one dump file per thread
      "--compress-strings=no", // function names in full on every line: see threadCounts
      "--dump-instr=no",
      "--collect-jumps=no",
      `--callgrind-out-file=${join(out, "callgrind.out.%p")}`,
    ],
  });
  return { started, out };
}

async function control(pid: number, ...command: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn("callgrind_control", [...command, String(pid)], { stdio: "ignore" });
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`callgrind_control ${command}: ${code}`)),
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
  // Each `send` opens its 8 connections and closes them at the end: code that the
  // requests alone never run (a stream's end), and that deoptimises functions optimised
  // for the requests alone. Warmed up in one go, the first close falls just before the
  // counted requests, which then pay for V8 optimising again (seen: +20,000 per request
  // on the main thread, +90,000 in the compiler, for bare node:http). So the warm-up
  // goes in rounds of 1,000 requests, each on connections of its own, like the count.
  for (let sent = 0; sent < WARMUP; sent += 1000)
    await send(url, headers, Math.min(1000, WARMUP - sent));
  // A compile job still running when counting starts would be counted without its
  // entry point on callgrind's call stack (so not recognised): let such jobs end.
  await new Promise((done) => setTimeout(done, 2000));
  await control(pid, "-i", "on");
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
  await rm(server.out, { recursive: true, force: true });
  const loadedOwn = loaded.total - loaded.compiler;
  const idleOwn = idle.total - idle.compiler;
  return {
    name,
    perRequest: (loadedOwn - idleOwn) / MEASURED,
    idlePerRequest: idleOwn / MEASURED,
    compilerPerRequest: (loaded.compiler + idle.compiler) / MEASURED,
  };
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
    `${MEASURED.toLocaleString("en-US")} requests counted after ${WARMUP.toLocaleString("en-US")} uncounted to warm up, 8 at a time; every thread of the server counted, less as long a time idle and less V8's optimising compiler (both shown apart, per request).`,
    "",
    "| Server | Instructions per request | Idle, per request | Compiler, per request (left out) |",
    "| --- | ---: | ---: | ---: |",
    ...rows.map((r) => {
      const n = (v: number) => Math.round(v).toLocaleString("en-US");
      return `| ${r.name} | ${n(r.perRequest)} | ${n(r.idlePerRequest)} | ${n(r.compilerPerRequest)} |`;
    }),
    "",
  ].join("\n");
}
