/**
 * The token read answered before Fastify's request lifecycle, when its answer is
 * already known: `GET /v1/connections/<id>/token`, spelt exactly so, no query and no
 * body, a key held in memory without limits, and the connection's token cached and
 * good. That is most of a workflow's traffic, and the lifecycle (a Request and a
 * Reply, hooks, a child logger, the route's schema parse, promises) costs more than
 * the answer itself: with it, the read ran at 0.6 of a bare `node:http` server.
 *
 * It is a lane, not a second router: it answers only what the route would answer
 * the same way, and hands everything else to Fastify untouched, which decides on the
 * route that matched as always. The path must be the canonical spelling (the id in
 * `ID_PATTERN`'s letters, so nothing in it is decoded or normalised); any other
 * spelling (`%761`, `//`, a trailing `/`, upper case, an absolute URL, a query) is
 * not taken here. The same key check (`ApiKeyRing`), the same `client` rule (any
 * valid key may read a token), the same token (`Tokenwarden.cachedToken`, what
 * `getToken` returns without waiting), the same headers and the same request
 * duration metric as the route. Whatever would need more (a key to look up, a key
 * with limits, a token to renew, an error, a request to log at `info`, a closing
 * server) goes to Fastify. test/service/token-read-lane.test.ts holds it to that.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ApiKeyRing } from "../broker/api-key-ring.js";
import { isLimited } from "../broker/api-keys.js";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { ID_PATTERN } from "../core/integration.js";
import { presentedKey } from "./access.js";
import type { ServiceMetrics } from "./metrics.js";
import { REQUEST_ID_HEADER, requestId } from "./request-id.js";
import type { TokenBodies } from "./token-bodies.js";

/** What Fastify sends a JSON body as. */
export const JSON_TYPE = "application/json; charset=utf-8";

/** `/v1/connections/<id>/token` and nothing else: the id is ID_PATTERN without anchors. */
const TOKEN_PATH = new RegExp(`^/v1/connections/(${ID_PATTERN.source.slice(1, -1)})/token$`);

/** The connection id when `url` is the token read's canonical path, else `undefined`. */
export function tokenReadTarget(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  return TOKEN_PATH.exec(url)?.[1];
}

export interface TokenReadLaneOptions {
  tw: Pick<Tokenwarden, "cachedToken">;
  keys: Pick<ApiKeyRing, "knownGrant">;
  bodies: TokenBodies;
  metrics: Pick<ServiceMetrics, "observeTokenRead">;
  /** The server is closing: its answers say `connection: close` (server.ts's onSend). */
  isClosing: () => boolean;
}

/** Answers the request and returns `true`, or returns `false` having done nothing. */
export type TokenReadLane = (request: IncomingMessage, response: ServerResponse) => boolean;

export function tokenReadLane(options: TokenReadLaneOptions): TokenReadLane {
  const { tw, keys, bodies, metrics, isClosing } = options;
  return (request, response) => {
    const startedAt = performance.now();
    if (request.method !== "GET") return false;
    const id = tokenReadTarget(request.url);
    if (id === undefined) return false;
    const { headers } = request;
    // A GET with a body is unusual enough to take the long way.
    if (headers["content-length"] !== undefined || headers["transfer-encoding"] !== undefined)
      return false;
    const key = presentedKey(headers.authorization);
    if (key === undefined || isClosing()) return false;
    const grant = keys.knownGrant(key, request.socket);
    if (grant === undefined || isLimited(grant)) return false;
    const token = tw.cachedToken(id);
    if (token === undefined) return false;
    const body = bodies.of(token);
    response.writeHead(200, {
      "cache-control": "no-store",
      "content-type": JSON_TYPE,
      [REQUEST_ID_HEADER]: requestId(request),
      "x-content-type-options": "nosniff",
      "content-length": Buffer.byteLength(body),
    });
    response.end(body);
    metrics.observeTokenRead((performance.now() - startedAt) / 1000);
    return true;
  };
}
