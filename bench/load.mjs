// The load generator, in its own process so it does not share a CPU queue with the
// server it measures:
//   node bench/load.mjs '<json options>'
// options: { url, method?, headers?, body?, connections, durationMs?, requests?, startAt? }
// Runs until durationMs passes or `requests` are done (both bounded), then prints one
// JSON line: { requests, errors, rps, p50, p90, p99, max, statuses } with latencies in ms.
import { Agent, request } from "undici";

const options = JSON.parse(process.argv[2]);
const connections = options.connections ?? 32;
const durationMs = Math.min(options.durationMs ?? 10_000, 120_000);
const maxRequests = Math.min(options.requests ?? Number.POSITIVE_INFINITY, 5_000_000);
const dispatcher = new Agent({ connections, pipelining: 1, keepAliveTimeout: 60_000 });
const latencies = [];
const statuses = {};
let errors = 0;
let started = 0;

async function one() {
  const t0 = process.hrtime.bigint();
  try {
    const res = await request(options.url, {
      method: options.method ?? "GET",
      headers: options.headers ?? {},
      body: options.body ?? null,
      dispatcher,
    });
    await res.body.dump();
    statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
  } catch {
    errors++;
  }
  latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
}

if (options.startAt !== undefined) {
  await new Promise((r) => setTimeout(r, Math.max(0, options.startAt - Date.now())));
}
const begin = performance.now();
const deadline = begin + durationMs;
if (options.burst === true) {
  // Every request at once (the refresh storm): concurrency is the request count.
  started = maxRequests;
  await Promise.all(Array.from({ length: maxRequests }, () => one()));
} else {
  const worker = async () => {
    while (performance.now() < deadline && started < maxRequests) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
}
const elapsed = (performance.now() - begin) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) =>
  latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
process.stdout.write(
  `${JSON.stringify({
    requests: latencies.length,
    errors,
    rps: latencies.length / elapsed,
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    max: latencies.at(-1) ?? 0,
    statuses,
  })}\n`,
);
await dispatcher.close();
