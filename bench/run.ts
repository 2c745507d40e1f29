/**
 * `npm run bench` (all, full scale) or `npm run bench -- <name>...` with names
 * token-read, proxy, streaming, storm, stampede, library (and instructions, run only
 * when named: bench/instructions.ts). `--smoke` runs everything at
 * small scale in a few minutes; `--write` puts the report into BENCHMARKS.md. Every
 * server under test and every load generator is its own process, on 127.0.0.1 only;
 * load comes from wrk (`apt-get install wrk`), pinned apart from the servers.
 */
import { execFileSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { ROOT } from "./lib.js";
import type { StormOptions } from "./storm.js";

const args = process.argv.slice(2);
const smoke = args.includes("--smoke");
const write = args.includes("--write");
const names = args.filter((a) => !a.startsWith("--"));
const all = ["token-read", "proxy", "streaming", "storm", "stampede", "library"];
// Slow (servers under valgrind) and a tool of its own: only when named.
const extra = ["instructions"];
const selected = names.length === 0 ? all : names;
for (const name of selected)
  if (!all.includes(name) && !extra.includes(name))
    throw new Error(`unknown benchmark ${name}; known: ${all.join(", ")}`);

for (const tool of ["wrk", "taskset"]) {
  try {
    execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
  } catch {
    throw new Error(`${tool} is needed: apt-get install ${tool === "wrk" ? "wrk" : "util-linux"}`);
  }
}
if (cpus().length < 2)
  process.stderr.write("warning: fewer than 2 CPUs, load and servers share one\n");

execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], {
  cwd: ROOT,
  stdio: "inherit",
});

// Full scale by default; --smoke shrinks every run.
const duration = smoke ? 2000 : 5000;
const rounds = smoke ? 1 : 5;
const streamBytes = smoke ? 64 * 2 ** 20 : 2 ** 30;
const storms: StormOptions[] = (
  smoke
    ? [
        { kind: "sqlite", count: 2_000, windowMs: 20_000, leadMs: 30_000 },
        { kind: "postgres", count: 10_000, windowMs: 20_000, leadMs: 30_000 },
      ]
    : [
        { kind: "sqlite", count: 100_000, windowMs: 300_000, leadMs: 60_000 },
        {
          kind: "postgres",
          count: Number(process.env.BENCH_PG_CONNECTIONS ?? 1_000_000),
          windowMs: Number(process.env.BENCH_PG_WINDOW_MS ?? 600_000),
          leadMs: 60_000,
        },
      ]
)
  // BENCH_STORM=postgres (or sqlite) runs that storm alone.
  .filter((s) => process.env.BENCH_STORM === undefined || s.kind === process.env.BENCH_STORM)
  .map((s) => {
    const delayMs = 200;
    // Little's law with room: the renewals in flight the pace needs, never below the default.
    const needed = Math.ceil((s.count / s.windowMs) * delayMs * 1.5);
    const concurrency = Number(
      process.env.BENCH_TOKEN_ENDPOINT_CONCURRENCY ?? Math.max(64, needed),
    );
    return {
      ...(s as Omit<StormOptions, "delayMs" | "tokenEndpointConcurrency">),
      delayMs,
      tokenEndpointConcurrency: concurrency,
    };
  });

const sections: string[] = [];
const started = performance.now();
for (const name of selected) {
  const t0 = performance.now();
  process.stderr.write(`== ${name}\n`);
  let section: string;
  switch (name) {
    case "token-read":
      section = await (await import("./token-read.js")).tokenRead(duration, rounds);
      break;
    case "proxy":
      section = await (await import("./proxy.js")).proxy(duration, rounds);
      break;
    case "streaming":
      section = await (await import("./streaming.js")).streaming(streamBytes);
      break;
    case "storm": {
      const { storm } = await import("./storm.js");
      const parts: string[] = [];
      for (const options of storms) parts.push(await storm(options));
      section = parts.join("\n");
      break;
    }
    case "stampede":
      section = await (await import("./stampede.js")).stampede();
      break;
    case "instructions":
      section = await (await import("./instructions.js")).instructions();
      break;
    default:
      section = await (await import("./library.js")).library(duration);
  }
  process.stderr.write(`   ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  process.stderr.write(`${section}\n`);
  sections.push(section);
}

const machine = `${cpus().length} × ${cpus()[0]?.model ?? "CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}`;
const report = [
  `Run on ${new Date().toISOString().slice(0, 10)}, ${machine}, in ${((performance.now() - started) / 1000).toFixed(0)} s with \`npm run bench${names.length > 0 || smoke ? " --" : ""}${names.length > 0 ? ` ${names.join(" ")}` : ""}${smoke ? " --smoke" : ""}\`.`,
  "",
  ...sections,
].join("\n");
process.stdout.write(`${report}\n`);
if (write) {
  const path = `${ROOT}/BENCHMARKS.md`;
  const current = await readFile(path, "utf8");
  const marker = "<!-- results -->";
  const head = current.includes(marker)
    ? current.slice(0, current.indexOf(marker))
    : `${current}\n`;
  await writeFile(path, `${head}${marker}\n\n${report}\n`);
}
process.exit(0);
