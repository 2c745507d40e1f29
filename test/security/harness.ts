import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { connect } from "node:net";
import { Writable } from "node:stream";
import { expect } from "vitest";
import type { RunningService } from "../../src/service/serve.js";
import type { TestDatabase } from "../fixtures/databases.js";
import { freePort } from "../fixtures/ports.js";
import { startTestService } from "../fixtures/service.js";
import type { LooseJson } from "../helpers.js";

/**
 * What the security tests share: the real service (as `tokenwarden serve` starts it)
 * on a fresh SQLite database, a raw HTTP client that sends a request target exactly as
 * written (no client normalizes it away), and servers that record the raw target of
 * every request they receive: the API, the token endpoint, and an "attacker" that no
 * request may ever reach.
 */
export const ADMIN_KEY = "security-admin-key-0123456789";

export interface Answer {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: LooseJson;
}

export interface SecurityService {
  service: RunningService;
  port: number;
  logs(): string;
  /** A request through a normal client (undici normalizes nothing in the path either). */
  call(
    method: string,
    path: string,
    options?: { key?: string | null; body?: unknown; headers?: Record<string, string> },
  ): Promise<Answer>;
  /** The request line's target exactly as given, over a socket. */
  raw(
    target: string,
    options?: { method?: string; key?: string | null; headers?: Record<string, string> },
  ): Promise<Answer>;
  close(): Promise<void>;
}

export async function startSecurityService(
  options: { hooksDir?: string; db?: TestDatabase } = {},
): Promise<SecurityService & { db: TestDatabase }> {
  const port = await freePort();
  let logs = "";
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs += chunk.toString();
      done();
    },
  });
  const service = await startTestService({
    apiKey: ADMIN_KEY,
    database: options.db,
    settings: { port, hooksDir: options.hooksDir },
    serve: { logger: { level: "info", stream: sink } },
  });
  const auth = (key: string | null | undefined): Record<string, string> =>
    key === null ? {} : { authorization: `Bearer ${key ?? ADMIN_KEY}` };
  return {
    service,
    port,
    db: service.database,
    logs: () => logs,
    call: (method, path, callOptions = {}) => {
      const headers = { ...auth(callOptions.key), ...callOptions.headers };
      let body: string | undefined;
      if (callOptions.body !== undefined) {
        body = JSON.stringify(callOptions.body);
        headers["content-type"] = "application/json";
      }
      return rawRequest(port, method, path, headers, body);
    },
    raw: (target, rawOptions = {}) =>
      rawRequest(port, rawOptions.method ?? "GET", target, {
        ...auth(rawOptions.key),
        ...rawOptions.headers,
      }),
    close: () => service.close(),
  };
}

/** One HTTP/1.1 request on its own connection, the target sent byte for byte. */
export function rawRequest(
  port: number,
  method: string,
  target: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.setTimeout(15_000, () => socket.destroy(new Error(`no answer to ${method} ${target}`)));
    socket.on("connect", () => {
      const lines = [`${method} ${target} HTTP/1.1`, "host: 127.0.0.1", "connection: close"];
      for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
      if (body !== undefined) lines.push(`content-length: ${Buffer.byteLength(body)}`);
      socket.write(`${lines.join("\r\n")}\r\n\r\n${body ?? ""}`);
    });
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      try {
        resolve(parseAnswer(Buffer.concat(chunks), method));
      } catch (error) {
        reject(error);
      }
    });
  });
}

function parseAnswer(bytes: Buffer, method: string): Answer {
  const headEnd = bytes.indexOf("\r\n\r\n");
  if (headEnd === -1) throw new Error(`not an HTTP answer: ${bytes.toString("latin1")}`);
  const [statusLine, ...headerLines] = bytes.subarray(0, headEnd).toString("latin1").split("\r\n");
  const status = Number((statusLine ?? "").split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let payload = bytes.subarray(headEnd + 4);
  if (method === "HEAD") payload = Buffer.alloc(0);
  else if (headers["transfer-encoding"]?.includes("chunked")) payload = unchunk(payload);
  const text = payload.toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status, headers, text, json };
}

function unchunk(payload: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = payload.indexOf("\r\n", at);
    if (lineEnd === -1) break;
    const size = Number.parseInt(payload.subarray(at, lineEnd).toString("latin1"), 16);
    if (!(size > 0)) break;
    out.push(payload.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(out);
}

export interface Seen {
  method: string;
  /** The request target exactly as it arrived. */
  target: string;
  headers: IncomingMessage["headers"];
  body: string;
}

export interface Recorder {
  origin: string;
  port: number;
  seen: Seen[];
  /** Answers requests whose path (before `?`) is `path`; others get 404. */
  on(path: string, handler: (req: Seen, res: ServerResponse) => void): void;
  close(): Promise<void>;
}

export async function startRecorder(): Promise<Recorder> {
  const seen: Seen[] = [];
  const handlers = new Map<string, (req: Seen, res: ServerResponse) => void>();
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const record: Seen = {
      method: req.method ?? "",
      target: req.url ?? "",
      headers: req.headers,
      body: Buffer.concat(chunks).toString("utf8"),
    };
    seen.push(record);
    const handler = handlers.get(record.target.split("?")[0] ?? "");
    if (handler !== undefined) return handler(record, res);
    // Anything under a prefix registered as `<prefix>/*`.
    for (const [path, prefixHandler] of handlers) {
      if (path.endsWith("/*") && record.target.startsWith(path.slice(0, -1)))
        return prefixHandler(record, res);
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end('{"error":"not_found"}');
  });
  const sockets = new Set<Socket>();
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    seen,
    on: (path, handler) => handlers.set(path, handler),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** A token endpoint that hands out numbered tokens (client credentials). */
export function tokenEndpoint(recorder: Recorder, path = "/token"): { issued: () => number } {
  let issued = 0;
  recorder.on(path, (_req, res) => {
    issued++;
    sendJson(res, 200, {
      access_token: `access-${issued}`,
      token_type: "Bearer",
      expires_in: 3600,
    });
  });
  return { issued: () => issued };
}

/**
 * Puts the integration `acme` (client credentials at `recorder`'s /token, its API under
 * `apiPath` there, and any `more` fields) and its connection `c1`: both must be created.
 */
export async function putAcme(
  tw: SecurityService,
  recorder: Recorder,
  apiPath: string,
  more: Record<string, unknown> = {},
): Promise<void> {
  const put = await tw.call("PUT", "/v1/integrations/acme", {
    body: {
      grantType: "client_credentials",
      tokenUrl: `${recorder.origin}/token`,
      clientId: "app",
      clientSecret: "client-secret-value",
      apiBaseUrl: `${recorder.origin}${apiPath}`,
      ...more,
    },
  });
  expect(put.status).toBe(201);
  expect(
    (await tw.call("PUT", "/v1/connections/c1", { body: { integration: "acme" } })).status,
  ).toBe(201);
}
