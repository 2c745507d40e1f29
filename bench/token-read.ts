/**
 * GET /v1/connections/:id/token against a bare node:http server answering the same
 * JSON body (the ceiling for any Node server), both pinned to SERVER_CPU with wrk on
 * LOAD_CPU. Goals: at least 0.9 of the ceiling in requests/s and in server CPU per
 * request, p99 within 2 ms, at 32 connections.
 */
import { API_KEY, api, SERVER_CPU, startPinnedServer, startWithConnection } from "./lib.js";
import { compare, med, ratioText, row, saturationText, TABLE_HEAD } from "./wrk.js";

export async function tokenRead(durationMs: number, rounds: number): Promise<string> {
  const { tw, stop } = await startWithConnection("read", {}, SERVER_CPU);
  try {
    const body = JSON.stringify(await api(tw.url, "GET", "/v1/connections/bench-1/token"));
    const bare = await startPinnedServer(SERVER_CPU, "bare-json", body);
    try {
      const connections = 32;
      const result = await compare(
        rounds,
        connections,
        durationMs,
        { url: `${bare.url}/`, pid: bare.child.pid! },
        {
          url: `${tw.url}/v1/connections/bench-1/token`,
          authorization: `Bearer ${API_KEY}`,
          pid: tw.child.pid!,
        },
      );
      const p99 = med(result.candidate, (r) => r.p99Ms);
      return [
        "### 1. Token read",
        "",
        `\`GET /v1/connections/:id/token\` against a bare \`node:http\` server answering the same ${body.length}-byte JSON body: ${connections} connections from wrk (one thread, CPU ${process.env.BENCH_LOAD_CPU ?? "0"}), each server alone on CPU ${SERVER_CPU}; ${rounds} alternating round(s) of ${Math.round(durationMs / 1000)} s, medians shown. Server CPU is user + system time from \`/proc/<pid>/stat\` over the run ÷ requests served.`,
        "",
        ...TABLE_HEAD,
        row("bare node:http (ceiling)", result.baseline),
        row("Tokenwarden", result.candidate),
        "",
        `**Requests/s: ${ratioText(result.rpsRatios, 0.9)}** of the ceiling. **CPU per request: ${ratioText(result.cpuRatios, 0.9)}** (bare ÷ Tokenwarden). **p99 ${p99.toFixed(2)} ms** (goal within 2 ms: ${p99 <= 2 ? "met" : "missed"}).`,
        "",
        saturationText(result.baseline),
        "",
      ].join("\n");
    } finally {
      await bare.stop();
    }
  } finally {
    await stop();
  }
}
