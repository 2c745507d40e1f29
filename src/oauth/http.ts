import { createHash } from "node:crypto";
import { Agent, type Dispatcher, ProxyAgent, request } from "undici";
import { type ErrorCode, TokenwardenError } from "../core/errors.js";
import type { Integration } from "../core/integration.js";

/**
 * The one place Tokenwarden speaks HTTP to the outside (token endpoints, revocation,
 * hooks, APIs). It owns TLS modes, outbound proxies, timeouts and size limits, and
 * turns transport failures into coded errors that never quote a URL's query (where
 * `clientAuth: query` puts the secret).
 */
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

const dispatchers = new Map<string, Dispatcher>();
/** The same settings object (one connection's resolved integration) finds its pool at once. */
const bySettings = new WeakMap<object, { dispatcher: Dispatcher; generation: number }>();
/** Bumped by closeDispatchers, so no one is handed a closed pool. */
let generation = 0;

/**
 * Connection pools are reused per TLS and proxy setting: a new pool per request would
 * pay a TCP and TLS handshake on every token request.
 */
export function dispatcherFor(settings: Pick<TransportSettings, "tls" | "proxyUrl">): Dispatcher {
  const known = bySettings.get(settings);
  if (known !== undefined && known.generation === generation) return known.dispatcher;
  const dispatcher = pooledDispatcher(settings);
  bySettings.set(settings, { dispatcher, generation });
  return dispatcher;
}

function pooledDispatcher(settings: Pick<TransportSettings, "tls" | "proxyUrl">): Dispatcher {
  const key = createHash("sha256")
    .update(JSON.stringify([settings.tls, settings.proxyUrl ?? null]))
    .digest("base64url");
  let dispatcher = dispatchers.get(key);
  if (dispatcher === undefined) {
    const { mode, ca, cert, key: privateKey } = settings.tls;
    const tls = {
      rejectUnauthorized: mode !== "off",
      ...(mode === "trust" && ca !== undefined ? { ca } : {}),
      ...(cert !== undefined && privateKey !== undefined ? { cert, key: privateKey } : {}),
    };
    dispatcher =
      settings.proxyUrl === undefined
        ? new Agent({ connect: tls })
        : new ProxyAgent({ uri: settings.proxyUrl, requestTls: tls });
    dispatchers.set(key, dispatcher);
  }
  return dispatcher;
}

/** Closes every pooled connection (at shutdown, and between tests). */
export async function closeDispatchers(): Promise<void> {
  const all = [...dispatchers.values()];
  dispatchers.clear();
  generation++;
  await Promise.all(all.map((d) => d.close()));
}

/** `https://host/path` without query or credentials: what an error may say about a URL. */
export function describeEndpoint(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

export async function sendHttpRequest(
  req: HttpRequest,
  settings: TransportSettings,
  options: { maxResponseBytes?: number; what?: string } = {},
): Promise<HttpResponse> {
  const what = options.what ?? describeEndpoint(req.url);
  const limit = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const signal = AbortSignal.timeout(settings.timeoutMs);
  try {
    const res = await request(req.url, {
      method: req.method,
      headers: { "user-agent": USER_AGENT, ...req.headers },
      body: req.body ?? null,
      dispatcher: dispatcherFor(settings),
      signal,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      const buf = chunk as Buffer;
      size += buf.length;
      if (size > limit) {
        res.body.destroy();
        throw new TokenwardenError(
          "token_response_invalid",
          `${what} sent more than ${limit} bytes; a token response is never that large`,
          { status: res.statusCode },
        );
      }
      chunks.push(buf);
    }
    const contentType = headerValue(res.headers["content-type"]) ?? "";
    return {
      status: res.statusCode,
      headers: res.headers,
      contentType: contentType.split(";")[0]?.trim().toLowerCase() ?? "",
      body: Buffer.concat(chunks).toString("utf8"),
    };
  } catch (error) {
    if (error instanceof TokenwardenError) throw error;
    throw transportError(error, what, settings.timeoutMs, signal.aborted);
  }
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
