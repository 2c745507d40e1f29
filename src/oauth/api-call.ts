/**
 * An API call with the token in place (the token parameter and request
 * parameters), and the one refresh-and-retry after a refusal. Both `fetch` and
 * the service's proxy go through here; bodies stream both ways.
 */
import { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { compileLinearPattern } from "../core/linear-pattern.js";
import type { ResolvedIntegration } from "../core/resolve.js";
import { fillTokenTemplate } from "../core/template.js";
import type { TokenSet } from "../core/token-set.js";
import { type ApiAnswer, dispatchApi } from "./api-dispatch.js";
import type { ApiUrls } from "./api-url.js";
import { asksForNonce, type DpopContext, type DpopNonces, dpopProof } from "./dpop.js";
import { type HttpClient, transportError } from "./http.js";

export type { ApiAnswer } from "./api-dispatch.js";
export { apiUrl } from "./api-url.js";

export type HeaderMap = Record<string, string | string[] | undefined>;

export interface ApiRequest {
  method: string;
  /**
   * A path (with its query, as sent: percent-encoding kept) under `apiBaseUrl`, or an
   * absolute URL on its origin or one of `allowedApiOrigins` (api-url.ts).
   */
  path: string;
  headers: HeaderMap;
  /** A stream cannot be sent twice: a call with one is never retried. */
  body: string | Uint8Array | Readable | null;
}

export interface ApiResponse {
  status: number;
  headers: HeaderMap;
  body: Readable;
}

/** Asks the broker for a token other than the one the API refused (the same one if none can be had). */
export type RenewAfterRejection = (rejected: TokenSet) => Promise<TokenSet>;

export interface CallOptions {
  /** The client whose pools the call goes through (the caller's `Tokenwarden`'s). */
  http: HttpClient;
  /** Where a call's path leads (api-url.ts), each `apiBaseUrl` parsed once. */
  urls: ApiUrls;
  /**
   * Told when a stored `expiredBodyPattern` is one RE2 refuses (written by an older
   * version): it is then never run, and counts as no match.
   */
  onUnusablePattern?: (reason: string) => void;
  /** DPoP (RFC 9449 §7): where server nonces are kept, for tokens bound to a key. */
  dpopNonces?: DpopNonces;
}

/** The most of a body read to test `expiredBodyPattern`; a bigger body is not an error page. */
const PATTERN_BODY_LIMIT = 64 * 1024;

/** Places the token (header or query) and the integration's request headers. */
export function placeToken(
  config: Pick<ResolvedIntegration, "tokenPlacement" | "requestParams">,
  token: TokenSet,
  url: URL,
  headers: HeaderMap,
): void {
  const added = config.requestParams.headers;
  for (const name in added) headers[name.toLowerCase()] = added[name];
  const { in: where, name, template } = config.tokenPlacement;
  const value = fillTokenTemplate(dpopScheme(template, token), token.accessToken);
  if (where === "header") headers[name.toLowerCase()] = value;
  else url.searchParams.set(name, value);
}

/** A DPoP-bound token goes with the `DPoP` scheme (RFC 9449 §7.1), not `Bearer`. */
export function dpopScheme(template: string, token: Pick<TokenSet, "dpopKey">): string {
  return token.dpopKey === undefined ? template : template.replace(/^Bearer /i, "DPoP ");
}

/** RFC 9110 §7.6.1 hop-by-hop fields, plus what a proxy must set itself. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

/**
 * The caller's headers that may travel on: hop-by-hop fields go, and so does
 * `authorization`, which carried the caller's Tokenwarden API key.
 */
export function forwardableRequestHeaders(headers: HeaderMap): HeaderMap {
  const out: HeaderMap = {};
  for (const name in headers) {
    const value = headers[name];
    const lower = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(lower) || lower === "authorization") continue;
    out[lower] = value;
  }
  return out;
}

export function forwardableResponseHeaders(headers: HeaderMap): HeaderMap {
  const out: HeaderMap = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !HOP_BY_HOP.has(name.toLowerCase())) out[name] = value;
  }
  return out;
}

/** Did the API refuse the token? A `retryOn` status, or a body matching `expiredBodyPattern`. */
async function refusal(
  config: Pick<ResolvedIntegration, "retryOn" | "expiredBodyPattern">,
  res: ApiAnswer,
  options: CallOptions,
): Promise<{ refused: boolean; response: ApiAnswer }> {
  if (config.retryOn.includes(res.status)) return { refused: true, response: res };
  const pattern = config.expiredBodyPattern;
  if (pattern === undefined) return { refused: false, response: res };
  if (Buffer.isBuffer(res.body))
    return { refused: matches(pattern, res.body, options), response: res };
  const length = Number(res.headers["content-length"] ?? Number.NaN);
  if (length > PATTERN_BODY_LIMIT) return { refused: false, response: res };
  // Read the body to test it, then hand on a copy of what was read.
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size > PATTERN_BODY_LIMIT) {
      const rest = res.body;
      const replay = Readable.from(
        (async function* () {
          yield* chunks;
          yield* rest;
        })(),
      );
      return { refused: false, response: { ...res, body: replay } };
    }
  }
  const text = Buffer.concat(chunks);
  return { refused: matches(pattern, text, options), response: { ...res, body: text } };
}

function matches(pattern: string, body: Buffer, options: CallOptions): boolean {
  // Linear time in the body whatever the pattern (linear-pattern.ts); never RegExp.
  const compiled = compileLinearPattern(pattern);
  if (!compiled.ok) options.onUnusablePattern?.(compiled.reason);
  return compiled.ok && compiled.pattern.test(body.toString("utf8"));
}

/** Lets go of an answer not handed on: a streaming body is drained, so its connection goes back to the pool. */
function discard(res: ApiAnswer): void {
  if (!Buffer.isBuffer(res.body)) res.body.resume();
}

/** The public form of an answer: its body always a stream. */
export function streamed(res: ApiAnswer): ApiResponse {
  const { body } = res;
  if (!Buffer.isBuffer(body)) return { status: res.status, headers: res.headers, body };
  return {
    status: res.status,
    headers: res.headers,
    body: Readable.from([body], { objectMode: false }),
  };
}

/** Sends with the token placed; not itself async, so a plain call makes no promise of its own. */
function send(
  config: ResolvedIntegration,
  token: TokenSet,
  req: ApiRequest,
  options: CallOptions,
): Promise<ApiAnswer> {
  const url = options.urls.url(config, req.path);
  const headers: HeaderMap = { ...req.headers };
  placeToken(config, token, url, headers);
  const { dpopKey } = token;
  const nonces = options.dpopNonces;
  if (dpopKey === undefined || nonces === undefined)
    return sendOnce(options.http, config, req, url, headers);
  return sendWithProof({ key: dpopKey, nonces }, config, token, req, options.http, url, headers);
}

/** A DPoP-bound token: each attempt with a new proof, once more with the API's nonce. */
async function sendWithProof(
  dpop: DpopContext,
  config: ResolvedIntegration,
  token: TokenSet,
  req: ApiRequest,
  http: HttpClient,
  url: URL,
  headers: HeaderMap,
): Promise<ApiAnswer> {
  for (let attempt = 0; ; attempt++) {
    headers.dpop = await dpopProof(
      dpop,
      { method: req.method, url, accessToken: token.accessToken },
      Date.now(), // judged by the API's clock
    );
    const res = await sendOnce(http, config, req, url, headers);
    const learned = dpop.nonces.learn(url, res.headers);
    const wwwAuthenticate = res.headers["www-authenticate"];
    const asks = asksForNonce(
      res.status,
      "",
      Array.isArray(wwwAuthenticate) ? wwwAuthenticate.join(", ") : wwwAuthenticate,
    );
    // A stream cannot be sent twice; otherwise once more with the nonce (RFC 9449 §9).
    if (attempt > 0 || learned === undefined || !asks || req.body instanceof Readable) return res;
    discard(res);
  }
}

function sendOnce(
  http: HttpClient,
  config: ResolvedIntegration,
  req: ApiRequest,
  url: URL,
  headers: HeaderMap,
): Promise<ApiAnswer> {
  const failed = (error: unknown) =>
    transportError(error, `${url.origin}${url.pathname}`, config.timeoutMs, false);
  let dispatcher: Dispatcher;
  try {
    dispatcher = http.dispatcherFor(config);
  } catch (error) {
    return Promise.reject(failed(error));
  }
  return dispatchApi(
    dispatcher,
    {
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: req.method as Dispatcher.HttpMethod,
      headers: headers as Record<string, string | string[]>,
      body: req.body,
      // The integration's `timeoutMs` bounds the wait for the answer's headers, and then
      // each silence in its body: a body streaming for longer than that is not cut.
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
    },
    failed,
  );
}

export async function callApi(
  config: ResolvedIntegration,
  token: TokenSet,
  req: ApiRequest,
  renew: RenewAfterRejection,
  options: CallOptions,
): Promise<ApiAnswer> {
  const first = await send(config, token, req, options);
  if (req.body instanceof Readable) return first;
  // Most answers leave nothing to judge: no retryOn status, no pattern to test.
  if (config.expiredBodyPattern === undefined && !config.retryOn.includes(first.status))
    return first;
  const { refused, response } = await refusal(config, first, options);
  if (!refused) return response;
  let next: TokenSet;
  try {
    next = await renew(token);
  } catch (error) {
    discard(response); // so the connection goes back to the pool
    throw error;
  }
  // No other token to be had (session none, a person must act, backing off): the
  // refusal goes back as it is, and the call is not sent twice.
  if (next.accessToken === token.accessToken) return response;
  discard(response);
  return send(config, next, req, options);
}
