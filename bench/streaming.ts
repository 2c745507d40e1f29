/**
 * Big bodies both ways through /v1/proxy with resident memory sampled during each
 * transfer (VmRSS from /proc): a proxy that streams holds a few chunks whatever the
 * size; one that buffers grows by the body. The bare undici proxy does the same
 * transfers for comparison.
 */
import { Readable } from "node:stream";
import { request } from "undici";
import { API_KEY, api, type Started, startServer, startWithConnection } from "./lib.js";
import { mib, rssBytes } from "./proc.js";

export async function streaming(bytes: number): Promise<string> {
  const upstream = await startServer("api");
  const { tw, stop } = await startWithConnection("stream", { apiBaseUrl: upstream.url });
  try {
    const token = (
      (await api(tw.url, "GET", "/v1/connections/bench-1/token")) as { accessToken: string }
    ).accessToken;
    const bare = await startServer("bare-proxy", upstream.url, token);
    try {
      const ours = { base: `${tw.url}/v1/proxy/bench-1`, auth: `Bearer ${API_KEY}`, server: tw };
      const theirs = { base: bare.url, auth: "", server: bare };
      const rows: string[] = [];
      let flat = true;
      for (const [name, via] of [
        ["Tokenwarden", ours],
        ["bare undici proxy", theirs],
      ] as const) {
        const down = await sampled(via.server, () => download(via.base, via.auth, bytes));
        const up = await sampled(via.server, () => upload(via.base, via.auth, bytes));
        for (const [direction, m] of [
          ["down", down],
          ["up", up],
        ] as const) {
          const ok = m.moved === bytes;
          // Warming up (buffers, compiled code) grows memory early on; a body held in
          // memory keeps it growing to the end.
          const lateGrowth = m.maxSecondHalf - m.maxFirstHalf;
          const isFlat = ok && lateGrowth < FLAT_BYTES;
          if (name === "Tokenwarden") flat &&= isFlat;
          rows.push(
            `| ${name} | ${direction} | ${mib(m.moved)}${ok ? "" : " (incomplete)"} | ${(m.moved / 2 ** 20 / m.seconds).toFixed(0)} MiB/s | ${mib(m.startRss)} | ${mib(m.maxFirstHalf)} | ${mib(m.maxSecondHalf)} | ${isFlat ? "yes" : "**no**"} |`,
          );
        }
      }
      return [
        "### 3. Streaming through the proxy",
        "",
        `${mib(bytes)} down (\`GET\` from an API producing it) and ${mib(bytes)} up (\`POST\` with a known length to an API counting it) through each proxy; the proxy's resident memory (VmRSS) sampled every 50 ms during each transfer. Flat: the most in the second half of the transfer is within ${mib(FLAT_BYTES)} of the most in the first half (memory that grows with the body keeps growing; warming up does not).`,
        "",
        "| proxy | direction | bytes | rate | RSS before | RSS, most in the first half | most in the second half | flat |",
        "|---|---|---:|---:|---:|---:|---:|---|",
        ...rows,
        "",
        `**Tokenwarden's memory ${flat ? "stayed flat" : "did not stay flat"}** both ways.`,
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

const FLAT_BYTES = 32 * 2 ** 20;

interface Measured {
  moved: number;
  seconds: number;
  startRss: number;
  maxFirstHalf: number;
  maxSecondHalf: number;
}

async function sampled(server: Started, transfer: () => Promise<number>): Promise<Measured> {
  const pid = server.child.pid!;
  const startRss = rssBytes(pid);
  const samples: Array<[number, number]> = [];
  const t0 = performance.now();
  const timer = setInterval(() => samples.push([performance.now() - t0, rssBytes(pid)]), 50);
  try {
    const moved = await transfer();
    const elapsed = performance.now() - t0;
    const most = (from: number, to: number) =>
      Math.max(startRss, ...samples.filter(([t]) => t >= from && t < to).map(([, rss]) => rss));
    return {
      moved,
      seconds: elapsed / 1000,
      startRss,
      maxFirstHalf: most(0, elapsed / 2),
      maxSecondHalf: most(elapsed / 2, elapsed),
    };
  } finally {
    clearInterval(timer);
  }
}

async function download(base: string, auth: string, bytes: number): Promise<number> {
  const res = await request(`${base}/source?bytes=${bytes}`, {
    headers: auth === "" ? {} : { authorization: auth },
    bodyTimeout: 120_000,
  });
  let moved = 0;
  for await (const chunk of res.body) moved += (chunk as Buffer).length;
  return res.statusCode === 200 ? moved : 0;
}

async function upload(base: string, auth: string, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 121);
  async function* body() {
    for (let left = bytes; left > 0; left -= chunk.length)
      yield left >= chunk.length ? chunk : chunk.subarray(0, left);
  }
  const res = await request(`${base}/sink`, {
    method: "POST",
    headers: {
      ...(auth === "" ? {} : { authorization: auth }),
      "content-type": "application/octet-stream",
      "content-length": String(bytes),
    },
    body: Readable.from(body()),
    bodyTimeout: 120_000,
    headersTimeout: 120_000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`upload: ${res.statusCode} ${text.slice(0, 200)}`);
  return (JSON.parse(text) as { received: number }).received;
}
