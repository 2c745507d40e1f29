// Baseline and peer servers for the benchmarks, each in its own process:
//   node bench/servers.mjs token-server <port> [expiresIn] [delayMs]  a client credentials token endpoint
//   node bench/servers.mjs bare-json <port> <body>                     node:http answering a fixed JSON body
//   node bench/servers.mjs bare-fastify <port> <body>                  one Fastify route answering it
//   node bench/servers.mjs api <port>                                  the "API" behind the proxies
//     (GET /source?bytes=N streams N bytes; POST /sink counts what it is sent)
//   node bench/servers.mjs bare-proxy <port> <target origin> <token>   an undici pass-through proxy
// Each prints "listening <port>" when ready. Plain JS: nothing is compiled on the measured path.
import { createServer } from "node:http";
import { Agent, request } from "undici";

const [mode, portArg, ...rest] = process.argv.slice(2);
const port = Number(portArg);
let server;

if (mode === "token-server") {
  const expiresIn = Number(rest[0] ?? 3600);
  const delayMs = Number(rest[1] ?? 0);
  let issued = 0;
  // Requests being answered now, and the most at once since the last `/count?reset=1`:
  // what the provider sees of a client's concurrency.
  let inFlight = 0;
  let peak = 0;
  server = createServer((req, res) => {
    if (req.url?.startsWith("/count")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ issued, inFlight, peak }));
      if (req.url.endsWith("reset=1")) peak = inFlight;
      return;
    }
    inFlight++;
    peak = Math.max(peak, inFlight);
    res.on("close", () => {
      inFlight--;
    });
    req.resume();
    req.on("end", () => {
      issued++;
      const body = JSON.stringify({
        access_token: `tok-${issued}-${process.hrtime.bigint()}`,
        token_type: "Bearer",
        expires_in: expiresIn,
      });
      const send = () => {
        res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
        res.end(body);
      };
      if (delayMs > 0) setTimeout(send, delayMs);
      else send();
    });
  });
} else if (mode === "bare-json") {
  const body = rest[0] ?? "{}";
  server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
    });
    res.end(body);
  });
} else if (mode === "bare-fastify") {
  const body = rest[0] ?? "{}";
  const { default: Fastify } = await import("fastify");
  const app = Fastify({ logger: false });
  app.get("/", (_request, reply) => {
    reply.header("content-type", "application/json; charset=utf-8");
    reply.header("cache-control", "no-store");
    reply.send(body);
  });
  await app.ready();
  server = app.server;
} else if (mode === "api") {
  const body = JSON.stringify({
    orders: [
      { id: 1, qty: 2 },
      { id: 2, qty: 1 },
    ],
  });
  const chunk = Buffer.alloc(64 * 1024, 120);
  server = createServer((req, res) => {
    if (!req.headers.authorization?.startsWith("Bearer ")) {
      req.resume();
      res.writeHead(401).end();
      return;
    }
    const url = new URL(req.url ?? "/", "http://api");
    if (url.pathname === "/sink") {
      let received = 0;
      req.on("data", (c) => {
        received += c.length;
      });
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ received }));
      });
      return;
    }
    req.resume();
    if (url.pathname === "/source") {
      let left = Number(url.searchParams.get("bytes") ?? 0);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": left });
      // Written as the socket drains: the API holds one chunk, whatever the size.
      const pump = () => {
        while (left > 0) {
          const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= piece.length;
          if (!res.write(piece)) return res.once("drain", pump);
        }
        res.end();
      };
      pump();
      return;
    }
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(body);
    });
  });
} else if (mode === "bare-proxy") {
  const [target, token] = rest;
  const dispatcher = new Agent({ connections: 256 });
  server = createServer(async (req, res) => {
    try {
      const headers = { ...req.headers, authorization: `Bearer ${token}` };
      delete headers.host;
      delete headers.connection;
      const upstream = await request(`${target}${req.url}`, {
        method: req.method,
        headers,
        body: req.method === "GET" || req.method === "HEAD" ? null : req,
        dispatcher,
      });
      res.writeHead(upstream.statusCode, upstream.headers);
      upstream.body.pipe(res);
    } catch (error) {
      res.writeHead(502).end(String(error));
    }
  });
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}

server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
