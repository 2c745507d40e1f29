import {
  API_KEY,
  alternate,
  api,
  fmt,
  ms,
  runLoad,
  startServer,
  startWithConnection,
} from "./lib.js";

/**
 * GET /v1/connections/:id/token against a bare node:http server answering the same
 * JSON body: the ceiling for any Node server. Goal: at least 0.8 of it.
 */
export async function tokenRead(durationMs: number): Promise<string> {
  const { tw, stop } = await startWithConnection("read");
  try {
    const body = JSON.stringify(await api(tw.url, "GET", "/v1/connections/bench-1/token"));
    const bare = await startServer("bare-json", body);
    try {
      const connections = 32;
      // Warm both (JIT, connection pools), then measure each for the same time.
      await runLoad({ url: `${bare.url}/`, connections, durationMs: 1500 });
      await runLoad({
        url: `${tw.url}/v1/connections/bench-1/token`,
        headers: { authorization: `Bearer ${API_KEY}` },
        connections,
        durationMs: 1500,
      });
      const rounds = durationMs >= 10_000 ? 3 : 1;
      const each = rounds === 1 ? durationMs : Math.round(durationMs / 2);
      const measured = await alternate(
        rounds,
        () => runLoad({ url: `${bare.url}/`, connections, durationMs: each }),
        () =>
          runLoad({
            url: `${tw.url}/v1/connections/bench-1/token`,
            headers: { authorization: `Bearer ${API_KEY}` },
            connections,
            durationMs: each,
          }),
      );
      const { baseline, candidate: ours, ratio } = measured;
      return [
        "### 1. Token read",
        "",
        `\`GET /v1/connections/:id/token\` (${connections} connections, ${rounds} alternating rounds of ${each / 1000} s each, the median round shown; load from a separate process) against a bare \`node:http\` server answering the same ${body.length}-byte JSON body.`,
        "",
        "| server | requests/s | p50 | p99 | errors |",
        "|---|---:|---:|---:|---:|",
        `| bare node:http (ceiling) | ${fmt(baseline.rps)} | ${ms(baseline.p50)} | ${ms(baseline.p99)} | ${baseline.errors} |`,
        `| Tokenwarden | ${fmt(ours.rps)} | ${ms(ours.p50)} | ${ms(ours.p99)} | ${ours.errors} |`,
        "",
        `**Ratio: ${ratio.toFixed(2)} of the ceiling** (rounds: ${measured.ratios.map((r) => r.toFixed(2)).join(", ")}) (goal 0.80: ${ratio >= 0.8 ? "met" : `missed by ${(0.8 - ratio).toFixed(2)}`}). Non-200 answers: ${JSON.stringify(Object.fromEntries(Object.entries(ours.statuses).filter(([s]) => s !== "200")))}.`,
        "",
      ].join("\n");
    } finally {
      await bare.stop();
    }
  } finally {
    await stop();
  }
}
