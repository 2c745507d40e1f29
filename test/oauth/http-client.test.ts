import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  HttpClient,
  requestClientCredentialsGrant,
  sendHttpRequest,
  type TransportSettings,
} from "../../src/oauth/index.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { caught, resolved } from "../helpers.js";

/**
 * The HTTP client's pools belong to whoever made the client: requests through one
 * client share its connections, another client has its own, and closing a client
 * ends its connections and no one else's. The server tells connections apart by the
 * client's port.
 */
let server: QuirkServer;

beforeAll(async () => {
  // Longer than any test: a connection the server drops on its own would look like a new pool.
  server = await startQuirkServer({ keepAliveTimeoutMs: 120_000 });
  server.on("/ok", (_req, res) => json(res, 200, { ok: true }));
  server.on("/big", (_req, res) => json(res, 200, { padding: "x".repeat(200) }));
  server.on("/token", (_req, res) =>
    json(res, 200, { access_token: "AT-0123456789", token_type: "Bearer", expires_in: 60 }),
  );
});
afterAll(async () => {
  await server.close();
});

function settings(overrides: Partial<TransportSettings> = {}): TransportSettings {
  return { tls: { mode: "verify" }, timeoutMs: 10_000, ...overrides };
}

/** Kept past any test's length: a connection closed for idling would look like a closed pool. */
const KEEP = { keepAliveTimeoutMs: 120_000 };

/**
 * Sends `count` GETs one after another and returns the client ports the server saw.
 * A pool may open a second connection when the next request comes before undici has
 * put the first one back, so reuse shows as fewer ports than requests, not as one.
 */
async function portsOf(
  http: HttpClient | undefined,
  transport: TransportSettings,
  count = 4,
  path = "/ok",
): Promise<Set<number>> {
  const ports = new Set<number>();
  for (let i = 0; i < count; i++) {
    const res = await sendHttpRequest(
      { method: "GET", url: new URL(server.url(path)), headers: {} },
      transport,
      http === undefined ? {} : { http },
    );
    expect(res.status).toBe(200);
    const port = server.requests.at(-1)?.remotePort;
    if (port === undefined) throw new Error("the server saw no port");
    ports.add(port);
  }
  return ports;
}

function disjoint(a: Set<number>, b: Set<number>): boolean {
  return [...a].every((port) => !b.has(port));
}

function within(a: Set<number>, b: Set<number>): boolean {
  return [...a].every((port) => b.has(port));
}

describe("HttpClient", () => {
  it("reuses connections for the same settings, and keeps other settings in another pool", async () => {
    const http = new HttpClient(KEEP);
    try {
      const verify = await portsOf(http, settings());
      expect(verify.size).toBeLessThan(4);
      // A different TLS setting is a different pool, even to the same origin.
      const off = await portsOf(http, settings({ tls: { mode: "off" } }));
      expect(off.size).toBeLessThan(4);
      expect(disjoint(off, verify)).toBe(true);
      expect(within(await portsOf(http, settings()), verify)).toBe(true);
    } finally {
      await http.close();
    }
  });

  it("gives each client its own pools: closing one leaves the other's connections open and in use", async () => {
    const a = new HttpClient(KEEP);
    const b = new HttpClient(KEEP);
    try {
      const portsA = await portsOf(a, settings());
      const portsB = await portsOf(b, settings());
      expect(disjoint(portsA, portsB)).toBe(true);
      await a.close();
      await vi.waitFor(() => expect(disjoint(portsA, new Set(server.openPorts()))).toBe(true));
      expect(within(portsB, new Set(server.openPorts()))).toBe(true);
      expect(within(await portsOf(b, settings()), portsB)).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("refuses requests once closed, with a coded error", async () => {
    const http = new HttpClient(KEEP);
    await portsOf(http, settings(), 1);
    await http.close();
    const error = await caught(() => portsOf(http, settings(), 1));
    expect(error).toMatchObject({ code: "internal_error" });
  });

  it("keeps at most maxPools pools: the least recently used is closed", async () => {
    const http = new HttpClient({ ...KEEP, maxPools: 2 });
    try {
      const verify = await portsOf(http, settings());
      const off = await portsOf(http, settings({ tls: { mode: "off" } }));
      expect(within(await portsOf(http, settings()), verify)).toBe(true); // now the most recent
      // A third setting pushes out the least recently used pool ("off").
      const trust = await portsOf(http, settings({ tls: { mode: "trust", ca: "unused" } }));
      await vi.waitFor(() => expect(disjoint(off, new Set(server.openPorts()))).toBe(true));
      const open = new Set(server.openPorts());
      expect(within(verify, open) && within(trust, open)).toBe(true);
      expect(within(await portsOf(http, settings()), verify)).toBe(true);
      expect(disjoint(await portsOf(http, settings({ tls: { mode: "off" } })), off)).toBe(true);
    } finally {
      await http.close();
    }
  });

  it("applies its size limit to every request, unless a request sets its own", async () => {
    const http = new HttpClient({ ...KEEP, maxResponseBytes: 100 });
    try {
      const big = { method: "GET" as const, url: new URL(server.url("/big")), headers: {} };
      const error = await caught(() => sendHttpRequest(big, settings(), { http }));
      expect(error).toMatchObject({ code: "token_response_invalid" });
      const res = await sendHttpRequest(big, settings(), { http, maxResponseBytes: 1000 });
      expect(res.status).toBe(200);
    } finally {
      await http.close();
    }
  });

  it("without a client, a call opens a connection of its own and closes it when done", async () => {
    const ports = await portsOf(undefined, settings(), 3);
    expect(ports.size).toBe(3);
    await vi.waitFor(() => expect(disjoint(ports, new Set(server.openPorts()))).toBe(true));
  });

  it("is what the protocol functions go through when given as { http }", async () => {
    const http = new HttpClient(KEEP);
    try {
      const config = resolved({ tokenUrl: server.url("/token"), clientSecret: "s" });
      const ports = new Set<number | undefined>();
      for (let i = 0; i < 4; i++) {
        await requestClientCredentialsGrant(config, { http });
        ports.add(server.requests.at(-1)?.remotePort);
      }
      expect(ports.size).toBeLessThan(4);
      const open = server.openPorts();
      for (const port of ports) expect(open).toContain(port);
    } finally {
      await http.close();
    }
  });
});
