/**
 * Load from wrk (C, epoll; Debian's `apt-get install wrk`), one thread pinned to
 * LOAD_CPU while the server runs pinned to SERVER_CPU, so the generator is never what
 * saturates first; the servers' CPU time comes from /proc over the same interval.
 */
import { spawn } from "node:child_process";
import { LOAD_CPU, ROOT } from "./lib.js";
import { CpuMeter } from "./proc.js";

export interface Target {
  url: string;
  /** The whole Authorization header value, if any. */
  authorization?: string;
  /** The process whose CPU time is charged to each request (the server under test). */
  pid: number;
}

export interface WrkResult {
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Socket errors and timeouts, plus answers other than 2xx/3xx. */
  errors: number;
  /** Server CPU time per request served (user + system, every thread), µs. */
  cpuUsPerRequest: number;
  /** The server's CPU use during the run, in cores (1 = one core saturated). */
  serverCores: number;
}

interface WrkJson {
  requests: number;
  durationUs: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  non2xx: number;
  timeouts: number;
  p50Us: number;
  p99Us: number;
}

export async function runWrk(
  target: Target,
  connections: number,
  durationMs: number,
): Promise<WrkResult> {
  const seconds = Math.max(1, Math.round(durationMs / 1000));
  const args = ["-c", LOAD_CPU, "wrk", "-t1", `-c${connections}`, `-d${seconds}s`];
  args.push("--latency", "-s", "bench/wrk-report.lua", target.url);
  const meter = new CpuMeter([target.pid]);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn("taskset", args, {
      cwd: ROOT,
      env: { ...process.env, WRK_AUTHORIZATION: target.authorization ?? "" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let text = "";
    child.stdout.on("data", (chunk: Buffer) => {
      text += chunk.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}: ${text}`)),
    );
  });
  const [server] = meter.read();
  const line = out.split("\n").find((l) => l.startsWith("WRK_JSON "));
  if (line === undefined || server === undefined) throw new Error(`no result from wrk: ${out}`);
  const r = JSON.parse(line.slice("WRK_JSON ".length)) as WrkJson;
  const errors = r.connectErrors + r.readErrors + r.writeErrors + r.timeouts + r.non2xx;
  return {
    requests: r.requests,
    rps: r.requests / (r.durationUs / 1e6),
    p50Ms: r.p50Us / 1000,
    p99Ms: r.p99Us / 1000,
    errors,
    cpuUsPerRequest: server.cpuUs / Math.max(1, r.requests),
    serverCores: server.cores,
  };
}

export interface Comparison {
  baseline: WrkResult[];
  candidate: WrkResult[];
  /** Per round: candidate requests/s ÷ baseline requests/s. */
  rpsRatios: number[];
  /** Per round: baseline CPU per request ÷ candidate CPU per request. */
  cpuRatios: number[];
}

/**
 * Baseline and candidate in alternation, `rounds` times, after a warm-up of each:
 * on a shared machine one pair of runs can be off either way; alternating and taking
 * medians steadies the figures.
 */
export async function compare(
  rounds: number,
  connections: number,
  durationMs: number,
  baseline: Target,
  candidate: Target,
): Promise<Comparison> {
  const warm = Math.min(durationMs, 2000);
  await runWrk(baseline, connections, warm);
  await runWrk(candidate, connections, warm);
  const result: Comparison = { baseline: [], candidate: [], rpsRatios: [], cpuRatios: [] };
  for (let i = 0; i < rounds; i++) {
    const b = await runWrk(baseline, connections, durationMs);
    const c = await runWrk(candidate, connections, durationMs);
    result.baseline.push(b);
    result.candidate.push(c);
    result.rpsRatios.push(c.rps / b.rps);
    result.cpuRatios.push(b.cpuUsPerRequest / c.cpuUsPerRequest);
  }
  return result;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The median of one figure over the rounds. */
export const med = (runs: WrkResult[], pick: (r: WrkResult) => number) => median(runs.map(pick));

/** A table row of medians: requests/s, p50, p99, CPU µs per request, cores used, errors. */
export function row(name: string, runs: WrkResult[]): string {
  const fmtN = (n: number) => Math.round(n).toLocaleString("en-US");
  return `| ${name} | ${fmtN(med(runs, (r) => r.rps))} | ${med(runs, (r) => r.p50Ms).toFixed(2)} ms | ${med(runs, (r) => r.p99Ms).toFixed(2)} ms | ${med(runs, (r) => r.cpuUsPerRequest).toFixed(1)} µs | ${med(runs, (r) => r.serverCores).toFixed(2)} | ${runs.reduce((n, r) => n + r.errors, 0)} |`;
}

export const TABLE_HEAD = [
  "| server | requests/s | p50 | p99 | server CPU per request | server CPU use (cores) | errors |",
  "|---|---:|---:|---:|---:|---:|---:|",
];

/** "0.91 (rounds 0.90, 0.93, 0.91; goal 0.90: met)". */
export function ratioText(ratios: number[], goal: number): string {
  const m = median(ratios);
  const verdict = m >= goal ? "met" : `missed by ${(goal - m).toFixed(2)}`;
  return `${m.toFixed(2)} (rounds ${ratios.map((r) => r.toFixed(2)).join(", ")}; goal ${goal.toFixed(2)}: ${verdict})`;
}

/**
 * Whether the baseline saturated its core: if not, something else (a busy machine,
 * the generator) bounded both servers, and the ratios do not measure the server.
 */
export function saturationText(baseline: WrkResult[]): string {
  const cores = med(baseline, (r) => r.serverCores);
  return cores >= 0.9
    ? `The baseline used ${cores.toFixed(2)} of its core: the server, not wrk, was the bound.`
    : `**The baseline used only ${cores.toFixed(2)} of its core: it was not saturated (a busy machine or the generator bounded it), so these figures do not measure the servers.**`;
}
