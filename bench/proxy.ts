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
 * Requests through /v1/proxy/:id/* to a local API, against the same requests sent
 * directly and through a bare undici pass-through proxy (the ceiling for a Node proxy).
 * Goals: at least 0.9 of the bare proxy's throughput, under 0.3 ms added at p50.
 */
export async function proxy(durationMs: number): Promise<string> {
  const upstream = await startServer("api");
  const { tw, stop } = await startWithConnection("proxy", { apiBaseUrl: upstream.url });
  try {
    const token = (
      (await api(tw.url, "GET", "/v1/connections/bench-1/token")) as { accessToken: string }
    ).accessToken;
    const bare = await startServer("bare-proxy", upstream.url, token);
    try {
      const connections = 32;
      const targets = {
        direct: {
          url: `${upstream.url}/orders?page=1`,
          headers: { authorization: `Bearer ${token}` },
        },
        bare: { url: `${bare.url}/orders?page=1`, headers: {} },
        tw: {
          url: `${tw.url}/v1/proxy/bench-1/orders?page=1`,
          headers: { authorization: `Bearer ${API_KEY}` },
        },
      };
      for (const t of Object.values(targets))
        await runLoad({ ...t, connections, durationMs: 1500 });
      const direct = await runLoad({ ...targets.direct, connections, durationMs });
      const rounds = durationMs >= 10_000 ? 3 : 1;
      const each = rounds === 1 ? durationMs : Math.round(durationMs / 2);
      const measured = await alternate(
        rounds,
        () => runLoad({ ...targets.bare, connections, durationMs: each }),
        () => runLoad({ ...targets.tw, connections, durationMs: each }),
      );
      const { baseline, candidate: ours } = measured;
      // Latency added per request, measured with one connection (no queueing).
      const single = { connections: 1, durationMs: Math.min(durationMs, 5000) };
      const bareOne = await runLoad({ ...targets.bare, ...single });
      const twOne = await runLoad({ ...targets.tw, ...single });
      const ratio = measured.ratio;
      const added = twOne.p50 - bareOne.p50;
      return [
        "### 2. Proxy overhead",
        "",
        `GET through each path to a local API (${connections} connections; the bare proxy and Tokenwarden in ${rounds} alternating rounds of ${each / 1000} s, the median round shown); then one connection at a time for the latency each hop adds.`,
        "",
        "| path | requests/s | p50 | p99 | p50, 1 connection | errors |",
        "|---|---:|---:|---:|---:|---:|",
        `| direct to the API | ${fmt(direct.rps)} | ${ms(direct.p50)} | ${ms(direct.p99)} | | ${direct.errors} |`,
        `| bare undici proxy (ceiling) | ${fmt(baseline.rps)} | ${ms(baseline.p50)} | ${ms(baseline.p99)} | ${ms(bareOne.p50)} | ${baseline.errors} |`,
        `| Tokenwarden /v1/proxy | ${fmt(ours.rps)} | ${ms(ours.p50)} | ${ms(ours.p99)} | ${ms(twOne.p50)} | ${ours.errors} |`,
        "",
        `**Throughput: ${ratio.toFixed(2)} of the bare proxy** (rounds: ${measured.ratios.map((r) => r.toFixed(2)).join(", ")}) (goal 0.90: ${ratio >= 0.9 ? "met" : `missed by ${(0.9 - ratio).toFixed(2)}`}); **added at p50: ${added.toFixed(3)} ms** over the bare proxy (goal under 0.3 ms: ${added < 0.3 ? "met" : "missed"}).`,
        "",
      ].join("\n");
    } finally {
      await bare.stop();
    }
  } finally {
    await stop();
    await upstream.stop();
  }
}
