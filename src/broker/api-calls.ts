/**
 * API calls with the token placed (`tokenPlacement`, `requestParams`), retried once
 * after a refresh when the answer says the token was refused (`retryOn`,
 * `expiredBodyPattern`) and the body can be sent again: the streaming form for the
 * service's proxy, and a WHATWG `fetch` for library users.
 */
import { Readable } from "node:stream";
import type { Integration } from "../core/integration.js";
import {
  type ApiAnswer,
  type ApiRequest,
  type ApiResponse,
  callApi,
  streamed,
} from "../oauth/api-call.js";
import { ApiUrls } from "../oauth/api-url.js";
import type { DpopNonces } from "../oauth/dpop.js";
import type { HttpClient } from "../oauth/http.js";
import type { RateLimits } from "./rate-limit.js";
import type { CacheEntry, TokenSource } from "./token-source.js";

/** What `fetch` accepts: the usual `RequestInit` fields. */
export interface FetchInit {
  method?: string;
  headers?: ConstructorParameters<typeof Headers>[0];
  body?: string | Uint8Array | URLSearchParams | ReadableStream<Uint8Array> | null;
}

/**
 * Something a person should know that is not an attempt (events are attempts): a
 * stored pattern it will not run, a scheduler tick or a background renewal that
 * failed before any attempt (the database is away).
 */
export interface TokenwardenWarning {
  code: "unusable_pattern" | "scheduler_failed" | "renewal_failed";
  /** Absent when unknown (the database that says it is away). */
  integration?: string;
  connectionId?: string;
  /** The failure's error code, when there is one. */
  errorCode?: string;
  message: string;
}

export interface ApiCallsContext {
  tokens: TokenSource;
  http: HttpClient;
  minTtlSeconds: number;
  /** A valid token for the connection (the cache, or a renewal). */
  entry(id: string, minTtlSeconds: number): Promise<CacheEntry>;
  warn(warning: TokenwardenWarning): void;
  /** Per-connection rate limits (`rateLimit`), shared through the store. */
  rateLimits: RateLimits;
  /** DPoP nonces the APIs handed this process (RFC 9449 §9). */
  dpopNonces: DpopNonces;
}

export class ApiCalls {
  readonly #ctx: ApiCallsContext;
  /** Warnings already given, so each is said once per process. */
  readonly #warned = new Set<string>();
  readonly #urls = new ApiUrls();

  constructor(ctx: ApiCallsContext) {
    this.#ctx = ctx;
  }

  /** The WHATWG form: a `Response`, bodies as web streams. */
  async fetch(id: string, path: string, init: FetchInit = {}): Promise<Response> {
    const body =
      init.body === undefined || init.body === null
        ? null
        : typeof init.body === "string" || init.body instanceof Uint8Array
          ? init.body
          : init.body instanceof URLSearchParams
            ? init.body.toString()
            : Readable.fromWeb(init.body as import("node:stream/web").ReadableStream<Uint8Array>);
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    if (init.body instanceof URLSearchParams && headers["content-type"] === undefined) {
      headers["content-type"] = "application/x-www-form-urlencoded;charset=UTF-8";
    }
    const res = await this.forwardHeld(id, { method: init.method ?? "GET", path, headers, body });
    const empty =
      res.status === 204 || res.status === 205 || res.status === 304 || init.method === "HEAD";
    const responseHeaders = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      if (Array.isArray(value)) for (const v of value) responseHeaders.append(name, v);
      else if (value !== undefined) responseHeaders.set(name, value);
    }
    const answer = res.body;
    const held = Buffer.isBuffer(answer);
    if (empty && !held) answer.resume();
    return new Response(
      // A Uint8Array of its own buffer: what both Node's and the DOM's Response take.
      empty
        ? null
        : held
          ? new Uint8Array(answer)
          : (Readable.toWeb(answer) as ReadableStream<Uint8Array>),
      { status: res.status, headers: responseHeaders },
    );
  }

  /** The streaming form of `fetch`. */
  async forward(id: string, request: ApiRequest): Promise<ApiResponse> {
    return streamed(await this.forwardHeld(id, request));
  }

  /**
   * `forward` for the service's proxy: a body that came whole with the answer's
   * headers, or a small one of known length, comes as bytes (api-dispatch.ts), any
   * other as a stream.
   */
  async forwardHeld(id: string, request: ApiRequest): Promise<ApiAnswer> {
    const { tokens, minTtlSeconds, rateLimits } = this.#ctx;
    // A good cached token and no limit to wait for cost no promise (the proxy's hot path).
    const entry = tokens.cached(id, minTtlSeconds) ?? (await this.#ctx.entry(id, minTtlSeconds));
    const { rateLimit } = entry.integration;
    const turn = rateLimits.acquire(id, rateLimit);
    if (turn !== undefined) await turn;
    const res = await callApi(
      entry.resolved,
      entry.token,
      request,
      async (rejected) => {
        const renewed = await this.#ctx.tokens.token(id, {
          trigger: "retry",
          minTtlSeconds: this.#ctx.minTtlSeconds,
          rejectedAccessToken: rejected.accessToken,
        });
        return renewed.token;
      },
      {
        http: this.#ctx.http,
        urls: this.#urls,
        onUnusablePattern: (reason) => this.#unusablePattern(id, entry.integration, reason),
        dpopNonces: this.#ctx.dpopNonces,
      },
    );
    // Only a 429 holds the connection's calls; any other answer goes on at once.
    if (res.status === 429) {
      const retryAfter = res.headers["retry-after"];
      await this.#ctx.rateLimits.observe(
        id,
        rateLimit,
        res.status,
        Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
      );
    }
    return res;
  }

  /** A stored pattern from an older version that RE2 refuses: never run; said once. */
  #unusablePattern(id: string, integration: Integration, reason: string): void {
    const seen = `pattern|${integration.key}|${integration.expiredBodyPattern}`;
    if (this.#warned.has(seen)) return;
    this.#warned.add(seen);
    this.#ctx.warn({
      code: "unusable_pattern",
      integration: integration.key,
      connectionId: id,
      message: `integration ${integration.key}: expiredBodyPattern is not run (RE2 refuses it: ${reason}); it counts as no match until it is rewritten`,
    });
  }
}
