/**
 * What a process costs, read from Linux's /proc: CPU time (user + system, every thread)
 * and resident memory. Read from outside, so measuring does not load the process.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (usually 100). */
const TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

/** CPU time used so far by `pid`, all threads, in microseconds. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may hold spaces and parentheses: count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of the whole line (utime, stime) are 12 and 13 after the name.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks / TICKS_PER_SECOND) * 1e6;
}

/** Resident memory of `pid` in bytes (VmRSS), or 0 once it has exited. */
export function rssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match === null ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

/** CPU use of several processes over an interval: start it, then read it. */
export class CpuMeter {
  readonly #pids: number[];
  readonly #cpu0: number[];
  readonly #wall0 = performance.now();

  constructor(pids: number[]) {
    this.#pids = pids;
    this.#cpu0 = pids.map(cpuMicros);
  }

  /** Per process: CPU µs used since the start, and the share of one core it was. */
  read(): Array<{ cpuUs: number; cores: number }> {
    const wallUs = (performance.now() - this.#wall0) * 1000;
    return this.#pids.map((pid, i) => {
      const cpuUs = cpuMicros(pid) - (this.#cpu0[i] ?? 0);
      return { cpuUs, cores: cpuUs / wallUs };
    });
  }
}

export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
