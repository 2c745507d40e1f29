/**
 * `npm run bench` (all) or `npm run bench -- <name>...` with names token-read, proxy,
 * storm, scale, library. `--write` puts the report into BENCHMARKS.md; `--smoke`
 * shortens every run (CI's 10-second smoke). Every server under test and every load
 * generator is its own process, on 127.0.0.1 only, with bounded counts and times.
 */
import { execFileSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { ROOT } from "./lib.js";

const args = process.argv.slice(2);
const smoke = args.includes("--smoke");
const write = args.includes("--write");
const names = args.filter((a) => !a.startsWith("--"));
const all = ["token-read", "proxy", "storm", "scale", "library"];
const selected = names.length === 0 ? all : names;
for (const name of selected)
  if (!all.includes(name)) throw new Error(`unknown benchmark ${name}; known: ${all.join(", ")}`);

execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], {
  cwd: ROOT,
  stdio: "inherit",
});

const duration = smoke ? 2000 : 10_000;
const sections: string[] = [];
const started = performance.now();
for (const name of selected) {
  const t0 = performance.now();
  process.stderr.write(`== ${name}\n`);
  let section: string;
  switch (name) {
    case "token-read":
      section = await (await import("./token-read.js")).tokenRead(duration);
      break;
    case "proxy":
      section = await (await import("./proxy.js")).proxy(duration);
      break;
    case "storm":
      section = await (await import("./storm.js")).storm();
      break;
    case "scale": {
      const { scale } = await import("./scale.js");
      section = smoke
        ? await scale("sqlite", 2_000, 3000)
        : `${await scale("sqlite", 100_000, 30_000)}\n${await scale("postgres", Number(process.env.BENCH_PG_CONNECTIONS ?? 1_000_000), 30_000)}`;
      break;
    }
    default:
      section = await (await import("./library.js")).library(duration);
  }
  process.stderr.write(`   ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  sections.push(section);
}

const machine = `${cpus().length} × ${cpus()[0]?.model ?? "CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}`;
const report = [
  `Run on ${new Date().toISOString().slice(0, 10)}, ${machine}, in ${((performance.now() - started) / 1000).toFixed(0)} s with \`npm run bench${names.length > 0 ? ` -- ${names.join(" ")}` : ""}${smoke ? " --smoke" : ""}\`.`,
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
