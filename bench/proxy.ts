/**
 * GET through /v1/proxy/:id/* to a local API, against a bare undici pass-through proxy
 * to the same API (the ceiling for a Node proxy). Each proxy alone on SERVER_CPU; the
 * API shares LOAD_CPU with wrk, so that the proxy's core is its own. Goal: at least
 * 0.9 of the bare proxy in requests/s and in proxy CPU per request.
 */
import {
  API_KEY,
  api,
  LOAD_CPU,
  SERVER_CPU,
  startPinnedServer,
  startWithConnection,
} from "./lib.js";
import { compare, ratioText, row, runWrk, saturationText, TABLE_HEAD } from "./wrk.js";

export async function proxy(durationMs: number, rounds: number): Promise<string> {
  const upstream = await startPinnedServer(LOAD_CPU, "api");
  const { tw, stop } = await startWithConnection("proxy", { apiBaseUrl: upstream.url }, SERVER_CPU);
  try {
    const token = (
      (await api(tw.url, "GET", "/v1/connections/bench-1/token")) as { accessToken: string }
    ).accessToken;
    const bare = await startPinnedServer(SERVER_CPU, "bare-proxy", upstream.url, token);
    try {
      const connections = 32;
      // For scale: the API alone, CPU charged to it (it shares its core with wrk).
      const direct = await runWrk(
        {
          url: `${upstream.url}/orders?page=1`,
          authorization: `Bearer ${token}`,
          pid: upstream.child.pid!,
        },
        connections,
        Math.min(durationMs, 3000),
      );
      const result = await compare(
        rounds,
        connections,
        durationMs,
        { url: `${bare.url}/orders?page=1`, pid: bare.child.pid! },
        {
          url: `${tw.url}/v1/proxy/bench-1/orders?page=1`,
          authorization: `Bearer ${API_KEY}`,
          pid: tw.child.pid!,
        },
      );
      return [
        "### 2. Proxy",
        "",
        `GET through each proxy to a local API: ${connections} connections from wrk (one thread), the proxy alone on CPU ${SERVER_CPU}, wrk and the API on CPU ${LOAD_CPU}; ${rounds} alternating round(s) of ${Math.round(durationMs / 1000)} s, medians shown. CPU per request is the proxy's own (the API's for the first row).`,
        "",
        ...TABLE_HEAD,
        row("the API directly (for scale)", [direct]),
        row("bare undici proxy (ceiling)", result.baseline),
        row("Tokenwarden /v1/proxy", result.candidate),
        "",
        `**Requests/s: ${ratioText(result.rpsRatios, 0.9)}** of the bare proxy. **CPU per request: ${ratioText(result.cpuRatios, 0.9)}** (bare ÷ Tokenwarden).`,
        "",
        saturationText(result.baseline),
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
