/**
 * The service's signals, through the real service: log lines for background failures
 * and status changes (captured from pino), /metrics scraped and parsed, x-request-id,
 * Retry-After during a backoff, and the token endpoint concurrency setting.
 */
import type { ServerResponse } from "node:http";
import { Writable } from "node:stream";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { type ApiOptions, startTestService, type TestService } from "../fixtures/service.js";

const API_KEY = "test-api-key-signals-0123456789";
const CLIENT_SECRET = "signals-client-secret-value";
let server: QuirkServer;
let service: TestService;
let logText = "";

/** How each token endpoint answers now, by path. */
const modes = new Map<string, "ok" | "unavailable" | "invalid_grant">();
let issued = 0;

function tokenEndpoint(path: string) {
  return (_req: unknown, res: ServerResponse) => {
    const mode = modes.get(path) ?? "ok";
    if (mode === "unavailable")
      return json(res, 503, { error: "temporarily_unavailable" }, { "retry-after": "120" });
    if (mode === "invalid_grant")
      return json(res, 400, { error: "invalid_grant", error_description: "grant revoked" });
    issued += 1;
    return json(res, 200, {
      access_token: `signals-access-token-${issued}`,
      token_type: "Bearer",
      expires_in: 3600,
    });
  };
}

beforeAll(async () => {
  server = await startQuirkServer();
  for (const path of ["/flaky/token", "/moody/token", "/ok/token"])
    server.on(path, tokenEndpoint(path));
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logText += chunk.toString();
      done();
    },
  });
  service = await startTestService({
    apiKey: API_KEY,
    serve: { logger: { level: "info", stream: sink }, scheduler: { tickMs: 20 } },
  });
});
afterAll(async () => {
  await service?.close();
  await server?.close();
});

interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  [field: string]: unknown;
}

const WARN = 40;
const INFO = 30;

function logLines(): LogLine[] {
  return logText
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as LogLine);
}

/** Waits (bounded by the test's own timeout) until a log line matches. */
async function logLine(match: (line: LogLine) => boolean): Promise<LogLine> {
  for (;;) {
    const found = logLines().find(match);
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const call = (
  method: string,
  path: string,
  { body, ...options }: ApiOptions & { body?: unknown } = {},
) => service.api(method, path, body, options);

async function putIntegration(key: string, extra: Record<string, string> = {}): Promise<void> {
  const put = await call("PUT", `/v1/integrations/${key}`, {
    body: {
      grantType: "client_credentials",
      tokenUrl: server.url(`/${key}/token`),
      clientId: `${key}-client`,
      clientSecret: CLIENT_SECRET,
      ...extra,
    },
  });
  expect(put.status, put.text).toBeLessThan(300);
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format, parsed into samples (comments skipped). */
async function scrape(): Promise<Sample[]> {
  const res = await call("GET", "/metrics", { key: null });
  expect(res.status).toBe(200);
  expect(res.headers["content-type"]).toContain("text/plain");
  const samples: Sample[] = [];
  for (const line of res.text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const parsed = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(parsed, line).not.toBeNull();
    const [, name, labelText = "", value] = parsed as unknown as [string, string, string, string];
    const labels: Record<string, string> = {};
    for (const [, label, labelValue] of labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[label as string] = labelValue as string;
    samples.push({ name, labels, value: Number(value) });
  }
  return samples;
}

function sampleOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return found.reduce((sum, s) => sum + s.value, 0);
}

describe("a connection backing off after a 503 from its token endpoint", () => {
  beforeAll(async () => {
    modes.set("/flaky/token", "unavailable");
    await putIntegration("flaky");
    const put = await call("PUT", "/v1/connections/flaky-1", { body: { integration: "flaky" } });
    expect(put.status, put.text).toBe(201);
    // The scheduler obtains the first token at once: it fails.
    await logLine((l) => l.connectionId === "flaky-1" && l.status === "error");
  });

  it("logs the scheduler's failure and the status change, naming connection and integration", () => {
    const lines = logLines().filter((l) => l.connectionId === "flaky-1");
    const failure = lines.find((l) => l.trigger === "schedule" && l.outcome === "failure");
    expect(failure).toMatchObject({
      level: WARN,
      integration: "flaky",
      action: "obtain",
      errorCode: "token_endpoint_error",
      httpStatus: 503,
    });
    expect(failure?.msg).toContain("temporarily_unavailable");
    expect(lines.find((l) => l.status === "error")).toMatchObject({
      level: WARN,
      integration: "flaky",
      environment: "",
      previousStatus: "active",
      status: "error",
      errorCode: "token_endpoint_error",
    });
    expect(logText).not.toContain(CLIENT_SECRET);
  });

  it("answers a token request 502 with Retry-After until the next attempt", async () => {
    const answer = await call("GET", "/v1/connections/flaky-1/token", {
      headers: { "x-request-id": "backoff-check-1" },
    });
    expect(answer.status).toBe(502);
    expect(answer.json.error).toMatchObject({ code: "token_endpoint_error", upstreamStatus: 503 });
    // The server asked for 120 s: the backoff waits at least that, and says so.
    const retryAfter = Number(answer.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThan(60);
    expect(retryAfter).toBeLessThanOrEqual(120);
    // The request's own warning carries its id.
    const warned = logLines().find(
      (l) => l.reqId === "backoff-check-1" && l.level === WARN && l.code === "token_endpoint_error",
    );
    expect(warned).toBeDefined();
  });

  it("counts it in /metrics: route pattern, error code, integration", async () => {
    const samples = await scrape();
    expect(
      sampleOf(samples, "http_request_duration_seconds_count", {
        method: "GET",
        route: "/v1/connections/:id/token",
        status_code: "502",
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sampleOf(samples, "tokenwarden_http_errors_total", {
        method: "GET",
        route: "/v1/connections/:id/token",
        code: "token_endpoint_error",
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sampleOf(samples, "tokenwarden_token_requests_total", {
        action: "obtain",
        trigger: "schedule",
        outcome: "failure",
        integration: "flaky",
        error_code: "token_endpoint_error",
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sampleOf(samples, "tokenwarden_token_request_duration_seconds_count", {
        action: "obtain",
        integration: "flaky",
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sampleOf(samples, "tokenwarden_connection_status_changes_total", {
        integration: "flaky",
        from: "active",
        to: "error",
      }),
    ).toBe(1);
    // No label holds a URL or an id: routes are patterns.
    for (const sample of samples) {
      for (const value of Object.values(sample.labels)) expect(value).not.toContain("flaky-1");
    }
  });
});

describe("status changes", () => {
  it("logs active -> error -> needs_reauth at warn and the recovery to active at info", async () => {
    await putIntegration("moody");
    const put = await call("PUT", "/v1/connections/moody-1", { body: { integration: "moody" } });
    expect(put.status, put.text).toBe(201);
    // The first token (the scheduler's or this one): active already, so no change is logged.
    expect((await call("GET", "/v1/connections/moody-1/token")).status).toBe(200);
    modes.set("/moody/token", "unavailable");
    expect((await call("POST", "/v1/connections/moody-1/refresh")).status).toBe(502);
    modes.set("/moody/token", "invalid_grant");
    expect((await call("POST", "/v1/connections/moody-1/refresh")).status).toBe(502);
    modes.set("/moody/token", "ok");
    const recovered = await call("POST", "/v1/connections/moody-1/refresh");
    expect(recovered.status, recovered.text).toBe(200);
    expect(recovered.json.status).toBe("active");

    const changes = logLines()
      .filter((l) => l.connectionId === "moody-1" && l.status !== undefined)
      .map((l) => ({
        level: l.level,
        from: l.previousStatus,
        to: l.status,
        integration: l.integration,
        errorCode: l.errorCode,
      }));
    expect(changes).toEqual([
      {
        level: WARN,
        from: "active",
        to: "error",
        integration: "moody",
        errorCode: "token_endpoint_error",
      },
      {
        level: WARN,
        from: "error",
        to: "needs_reauth",
        integration: "moody",
        errorCode: "token_endpoint_error",
      },
      {
        level: INFO,
        from: "needs_reauth",
        to: "active",
        integration: "moody",
        errorCode: undefined,
      },
    ]);
    const failures = logLines().filter(
      (l) => l.connectionId === "moody-1" && l.outcome === "failure",
    );
    expect(failures.map((l) => [l.level, l.trigger, l.integration])).toEqual([
      [WARN, "manual", "moody"],
      [WARN, "manual", "moody"],
    ]);
  });

  it("logs a configuration change that gives a connection a new try (after its commit)", async () => {
    modes.set("/moody/token", "invalid_grant");
    expect(
      (await call("PUT", "/v1/connections/moody-2", { body: { integration: "moody" } })).status,
    ).toBe(201);
    // The scheduler obtains its first token at once: the server refuses the client.
    await logLine((l) => l.connectionId === "moody-2" && l.status === "needs_reauth");
    modes.set("/moody/token", "ok");
    await putIntegration("moody", { displayName: "Moody, fixed" });
    expect(
      logLines().find((l) => l.connectionId === "moody-2" && l.previousStatus === "needs_reauth"),
    ).toMatchObject({ level: INFO, status: "active", integration: "moody" });
  });

  it("logs a revoke", async () => {
    await putIntegration("ok");
    await call("PUT", "/v1/connections/ok-1", { body: { integration: "ok" } });
    expect((await call("GET", "/v1/connections/ok-1/token")).status).toBe(200);
    expect((await call("POST", "/v1/connections/ok-1/revoke")).status).toBe(200);
    expect(
      logLines().find((l) => l.connectionId === "ok-1" && l.status === "revoked"),
    ).toMatchObject({ level: INFO, previousStatus: "active", integration: "ok" });
  });
});

describe("x-request-id", () => {
  it("echoes a sane id and names every log line of the request with it", async () => {
    const answer = await call("GET", "/v1/integrations", {
      headers: { "x-request-id": "trace-01HZX:abc.def_9" },
    });
    expect(answer.status).toBe(200);
    expect(answer.headers["x-request-id"]).toBe("trace-01HZX:abc.def_9");
    const lines = logLines().filter((l) => l.reqId === "trace-01HZX:abc.def_9");
    expect(lines.map((l) => l.msg)).toEqual(["incoming request", "request completed"]);
  });

  it("replaces one that is too long or has other characters, and generates one when absent", async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    for (const hostile of ["a".repeat(129), "id with spaces", '{"json":1}', "ünïcode", ""]) {
      const answer = await call("GET", "/healthz", {
        key: null,
        headers: { "x-request-id": hostile },
      });
      const echoed = answer.headers["x-request-id"] as string;
      expect(echoed).toMatch(uuid);
      expect(logLines().some((l) => l.reqId === echoed)).toBe(true);
      if (hostile !== "") expect(logText).not.toContain(JSON.stringify(hostile).slice(1, -1));
    }
    const none = await call("GET", "/healthz", { key: null });
    expect(none.headers["x-request-id"]).toMatch(uuid);
    const again = await call("GET", "/healthz", { key: null });
    expect(again.headers["x-request-id"]).not.toBe(none.headers["x-request-id"]);
  });

  it("is on errors answered before any route (401, 404, a URL that does not decode)", async () => {
    for (const [path, key, status] of [
      ["/v1/integrations", null, 401],
      ["/nowhere/42", API_KEY, 404],
      ["/%zz", API_KEY, 400],
    ] as const) {
      const answer = await call("GET", path, { key, headers: { "x-request-id": `err-${status}` } });
      expect(answer.status).toBe(status);
      expect(answer.headers["x-request-id"]).toBe(`err-${status}`);
    }
  });
});

describe("request log lines", () => {
  it("never show a connect link's token or a query, whatever the spelling of the path", async () => {
    const tokens = [
      "cs_logtoken_plain_0001",
      "cs_logtoken_upper_0002",
      "cs_logtoken_enc_0003",
      "cs_logtoken_dbl_0004",
    ];
    const paths = [
      `/connect/${tokens[0]}`,
      `/CONNECT/${tokens[1]}`,
      `/%63onnect/${tokens[2]}`,
      `//connect/${tokens[3]}?x=1`,
    ];
    for (const [i, path] of paths.entries())
      await call("GET", path, { key: null, headers: { "x-request-id": `log-path-${i}` } });
    await call("GET", "/oauth/callback?code=logged-code-secret&state=logged-state", { key: null });
    for (const [i] of paths.entries())
      await logLine((line) => line.reqId === `log-path-${i}` && line.msg === "incoming request");
    for (const token of [...tokens, "logged-code-secret", "logged-state"])
      expect(logText).not.toContain(token);
    const logged = logLines()
      .filter((line) => line.reqId === "log-path-0" && line.msg === "incoming request")
      .map((line) => (line.req as { path: string }).path);
    expect(logged).toEqual(["/connect/[redacted]"]);
  });
});

describe("/metrics", () => {
  it("has the standard process and Node.js names, HTTP requests by route pattern, the scheduler", async () => {
    await call("GET", "/nowhere/42");
    await call("GET", "/v1/integrations", { key: null });
    const samples = await scrape();
    const names = new Set(samples.map((s) => s.name));
    expect(names).toContain("process_cpu_seconds_total");
    expect(names).toContain("process_resident_memory_bytes");
    expect(names).toContain("nodejs_heap_size_used_bytes");
    expect([...names].filter((n) => n.includes("process_process"))).toEqual([]);
    expect(
      sampleOf(samples, "http_request_duration_seconds_count", {
        route: "unmatched",
        status_code: "404",
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sampleOf(samples, "tokenwarden_http_errors_total", { route: "unmatched", code: "not_found" }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sampleOf(samples, "tokenwarden_http_errors_total", {
        route: "/v1/integrations",
        code: "unauthorized",
      }),
    ).toBeGreaterThanOrEqual(1);
    // The scheduler has renewed (flaky-1, moody-1): its peak counts them.
    expect(names).toContain("tokenwarden_scheduler_renewals_in_flight");
    expect(
      sampleOf(samples, "tokenwarden_scheduler_renewals_in_flight_peak"),
    ).toBeGreaterThanOrEqual(1);
    const routes = new Set(
      samples
        .filter((s) => s.name === "http_request_duration_seconds_count")
        .map((s) => s.labels.route),
    );
    for (const route of routes) expect(route === "unmatched" || route?.startsWith("/")).toBe(true);
    expect(routes).not.toContain("/nowhere/42");
  });
});

describe("--token-endpoint-concurrency", () => {
  /** A token endpoint that holds each request until another one is in flight (or 500 ms). */
  function holdingEndpoint(path: string) {
    let inFlight = 0;
    let wake: (() => void) | undefined;
    const seen = { most: 0 };
    server.on(path, async (_req, res) => {
      inFlight += 1;
      seen.most = Math.max(seen.most, inFlight);
      wake?.();
      if (inFlight < 2) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 500);
        });
      }
      wake = undefined;
      inFlight -= 1;
      json(res, 200, { access_token: `held-${path}`, token_type: "Bearer", expires_in: 3600 });
    });
    return seen;
  }

  async function twoAtOnce(base: string, key: string, prefix: string): Promise<void> {
    const get = async (id: string) => {
      const res = await request(`${base}/v1/connections/${id}/token`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(res.statusCode, await res.body.text()).toBe(200);
    };
    await Promise.all([get(`${prefix}-1`), get(`${prefix}-2`)]);
  }

  it("bounds the renewals at once per token endpoint host (default 64)", async () => {
    const wide = holdingEndpoint("/wide/token");
    await putIntegration("wide");
    for (const id of ["wide-1", "wide-2"])
      await call("PUT", `/v1/connections/${id}`, { body: { integration: "wide" } });
    await twoAtOnce(service.url, API_KEY, "wide");
    expect(wide.most).toBe(2);

    const narrowKey = "test-api-key-narrow-0123456789";
    const narrow = await startTestService({
      apiKey: narrowKey,
      settings: { tokenEndpointConcurrency: "1" },
    });
    try {
      const held = holdingEndpoint("/narrow/token");
      await narrow.tw.putIntegration({
        key: "narrow",
        grantType: "client_credentials",
        tokenUrl: server.url("/narrow/token"),
        clientId: "narrow-client",
        clientSecret: CLIENT_SECRET,
      });
      for (const id of ["narrow-1", "narrow-2"])
        await narrow.tw.putConnection({ id, integration: "narrow" });
      await twoAtOnce(narrow.url, narrowKey, "narrow");
      expect(held.most).toBe(1);
    } finally {
      await narrow.close();
    }
  });
});
