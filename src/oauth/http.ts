/**
 * The one place Tokenwarden speaks HTTP to the outside (token endpoints, revocation,
 * hooks, APIs). It owns TLS modes, outbound proxies, timeouts and size limits, and
 * turns transport failures into coded errors that never quote a URL's query (where
 * `clientAuth: query` puts the secret).
 */
import { createHash } from "node:crypto";
import { Agent, type Dispatcher, ProxyAgent } from "undici";
import { type ErrorCode, TokenwardenError } from "../core/errors.js";
import type { Integration } from "../core/integration.js";
import { exchange } from "./http-exchange.js";

/** What of an integration decides how its requests travel. */
export type TransportSettings = Pick<Integration, "tls" | "proxyUrl" | "timeoutMs">;

/** A token response is a few hundred bytes; anything near this is not one. */
export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

export const USER_AGENT = "tokenwarden/0.1";

export interface HttpRequest {
  method: "GET" | "POST";
  url: URL;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  contentType: string;
  body: string;
}

export interface HttpClientOptions {
  /** The most of a body read into memory (token, revocation and hook answers). */
  maxResponseBytes?: number;
  /**
   * Pools kept at once, one per TLS and proxy setting; past this the least recently
   * used is closed (requests on it finish first). Bounds what integrations that come
   * and go leave behind.
   */
  maxPools?: number;
  /** How long an idle connection is kept for the next request (undici's default, 4 s). */
  keepAliveTimeoutMs?: number;
}

export const DEFAULT_MAX_POOLS = 64;

type PoolSettings = Pick<TransportSettings, "tls" | "proxyUrl">;

/**
 * Connection pools, reused per TLS and proxy setting (a new pool per request would
 * pay a TCP and TLS handshake on every token request), with the limits every request
 * through them obeys. Each `Tokenwarden` owns one and closes it when it closes, so
 * closing one instance never touches another's connections. Requests go through it
 * with `sendHttpRequest(req, settings, { http })`.
 */
export class HttpClient {
  readonly maxResponseBytes: number;
  readonly #maxPools: number;
  readonly #keepAliveTimeoutMs: number | undefined;
  /** By setting key, least recently used first (a Map keeps insertion order). */
  readonly #pools = new Map<string, Dispatcher>();
  /** The same settings object (one connection's resolved integration) skips the digest. */
  readonly #keys = new WeakMap<object, string>();
  #closed = false;

  constructor(options: HttpClientOptions = {}) {
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.#maxPools = Math.max(1, options.maxPools ?? DEFAULT_MAX_POOLS);
    this.#keepAliveTimeoutMs = options.keepAliveTimeoutMs;
  }

  /** The pool for these settings; one that was evicted or closed is never handed out. */
  dispatcherFor(settings: PoolSettings): Dispatcher {
    if (this.#closed) throw new TokenwardenError("internal_error", "this HTTP client is closed");
    let key = this.#keys.get(settings);
    if (key === undefined) {
      key = poolKey(settings);
      this.#keys.set(settings, key);
    }
    let dispatcher = this.#pools.get(key);
    if (dispatcher === undefined) {
      dispatcher = this.#newPool(settings);
      // Requests already on an evicted pool finish before it closes; no one waits for it.
      for (const old of this.#evictBeyond(this.#maxPools - 1)) void old.close().catch(() => {});
    } else {
      this.#pools.delete(key); // re-inserted below, at the most recently used end
    }
    this.#pools.set(key, dispatcher);
    return dispatcher;
  }

  /** Closes every pool; requests in flight finish first. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#evictBeyond(0).map((d) => d.close()));
  }

  #newPool(settings: PoolSettings): Dispatcher {
    const { mode, ca, cert, key } = settings.tls;
    const tls = {
      rejectUnauthorized: mode !== "off",
      ...(mode === "trust" && ca !== undefined ? { ca } : {}),
      ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
    };
    const keepAlive =
      this.#keepAliveTimeoutMs === undefined ? {} : { keepAliveTimeout: this.#keepAliveTimeoutMs };
    return settings.proxyUrl === undefined
      ? new Agent({ connect: tls, ...keepAlive })
      : new ProxyAgent({ uri: settings.proxyUrl, requestTls: tls, ...keepAlive });
  }

  /** Takes the least recently used pools out until `size` are left, and returns them. */
  #evictBeyond(size: number): Dispatcher[] {
    const evicted: Dispatcher[] = [];
    for (const [key, dispatcher] of this.#pools) {
      if (this.#pools.size <= size) break;
      this.#pools.delete(key);
      evicted.push(dispatcher);
    }
    return evicted;
  }
}

/** The pool key: a digest, so the map holds no copy of a client certificate's key. */
function poolKey(settings: PoolSettings): string {
  return createHash("sha256")
    .update(JSON.stringify([settings.tls, settings.proxyUrl ?? null]))
    .digest("base64url");
}

/** `https://host/path` without query or credentials: what an error may say about a URL. */
export function describeEndpoint(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

export interface SendOptions {
  /** Overrides the client's limit for this request. */
  maxResponseBytes?: number;
  /** How errors name the other end (never with the URL's query). */
  what?: string;
  /** The pools to go through; see `sendHttpRequest`. */
  http?: HttpClient;
}

/**
 * Sends one request and reads its whole answer, up to the size limit, within the
 * settings' timeout. It goes through `options.http`'s pools; without one, through a
 * client of its own, closed once the answer is read: a one-off call owns its
 * connection and leaves nothing open behind it (a program making many calls passes
 * a client, as `Tokenwarden` does).
 */
export async function sendHttpRequest(
  req: HttpRequest,
  settings: TransportSettings,
  options: SendOptions = {},
): Promise<HttpResponse> {
  if (options.http !== undefined) return sendWith(options.http, req, settings, options);
  const own = new HttpClient();
  try {
    return await sendWith(own, req, settings, options);
  } finally {
    await own.close();
  }
}

/** Promise chains rather than an async function: thousands may be waiting at once. */
function sendWith(
  http: HttpClient,
  req: HttpRequest,
  settings: TransportSettings,
  options: SendOptions,
): Promise<HttpResponse> {
  const what = options.what ?? describeEndpoint(req.url);
  const limit = options.maxResponseBytes ?? http.maxResponseBytes;
  let dispatcher: Dispatcher;
  try {
    dispatcher = http.dispatcherFor(settings);
  } catch (error) {
    return Promise.reject(error);
  }
  const sent = exchange(
    dispatcher,
    {
      method: req.method,
      url: req.url,
      headers: { "user-agent": USER_AGENT, ...req.headers },
      body: req.body,
    },
    {
      maxBytes: limit,
      timeoutMs: settings.timeoutMs,
      tooLarge: (status) =>
        new TokenwardenError(
          "token_response_invalid",
          `${what} sent more than ${limit} bytes; a token response is never that large`,
          { status },
        ),
    },
  );
  return sent.then(
    (res): HttpResponse => {
      const contentType = headerValue(res.headers["content-type"]) ?? "";
      return {
        status: res.status,
        headers: res.headers,
        contentType: contentType.split(";")[0]?.trim().toLowerCase() ?? "",
        body: res.body.toString("utf8"),
      };
    },
    (error: unknown) => {
      if (error instanceof TokenwardenError) throw error;
      const timedOut = error instanceof DOMException && error.name === "TimeoutError";
      throw transportError(error, what, settings.timeoutMs, timedOut);
    },
  );
}

export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

const TIMEOUT_CODES = new Set([
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ETIMEDOUT",
]);

/** OpenSSL and Node verification failures, by code (see `X509_V_ERR_*` in OpenSSL). */
function isTlsCode(code: string): boolean {
  return (
    code.startsWith("ERR_TLS_") ||
    code.startsWith("ERR_SSL_") ||
    code.includes("CERT") ||
    code === "EPROTO" ||
    code === "UNABLE_TO_VERIFY_LEAF_SIGNATURE" ||
    code === "UNABLE_TO_GET_ISSUER_CERT" ||
    code === "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
  );
}

/** Classifies a transport failure by walking its `cause` chain for a known code. */
export function transportError(
  error: unknown,
  what: string,
  timeoutMs: number,
  timedOut: boolean,
): TokenwardenError {
  let code: ErrorCode = "network_error";
  let detail = "";
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; depth++) {
    const errCode = (e as { code?: unknown }).code;
    if (e.name === "TimeoutError" || (typeof errCode === "string" && TIMEOUT_CODES.has(errCode))) {
      code = "timeout";
      break;
    }
    if (typeof errCode === "string" && isTlsCode(errCode)) {
      code = "tls_error";
      detail = errCode;
      break;
    }
    if (typeof errCode === "string" && detail === "") detail = errCode;
    e = e.cause;
  }
  if (timedOut) code = "timeout";
  const message =
    code === "timeout"
      ? `${what} did not answer within ${timeoutMs} ms`
      : code === "tls_error"
        ? `TLS with ${what} failed (${detail}); set tls.mode to trust with its CA, or fix the certificate`
        : `could not reach ${what}${detail === "" ? "" : ` (${detail})`}`;
  return new TokenwardenError(code, message, { cause: error });
}
