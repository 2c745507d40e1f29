/**
 * Who may use a route (SECURITY.md, "API key holders"), declared on the route
 * itself in its `config`: `public` needs no key, `client` takes any valid key, and a
 * route that says nothing is for `admin` keys only. The decision is made on the route
 * that matched, never on a spelling of the URL: `/%761/...`, `http://host/v1/...` and
 * the like reach the same route, and so the same rule.
 */
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from "fastify";
import { type ApiKeyGrant, type ApiKeyRing, allows, isLimited } from "../broker/api-keys.js";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { TokenwardenError } from "../core/errors.js";
import { errorBody } from "./errors.js";

export type RouteAccess = "public" | "client" | "admin";

declare module "fastify" {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** The presented key's grant; `null` on a public route. */
    apiKey: ApiKeyGrant | null;
  }
}

export const PUBLIC = { access: "public" } as const;
export const CLIENT = { access: "client" } as const;

export function authenticate(keys: ApiKeyRing): onRequestHookHandler {
  // A callback hook: no promise per request when the key is known from memory.
  return (request, reply, done) => {
    // No route matched: a key is still needed (so the 404 tells a stranger nothing),
    // whatever its role.
    const access: RouteAccess | "any" = request.is404
      ? "any"
      : (request.routeOptions.config.access ?? "admin");
    if (access === "public") return done();
    const presented = presentedKey(request.headers.authorization);
    const decide = (grant: ApiKeyGrant | undefined) => {
      if (grant === undefined) return refuse(reply, presented !== undefined);
      request.apiKey = grant;
      if (grant.role === "admin" || access === "client" || access === "any") return done();
      reply.errorCode = "forbidden";
      reply
        .code(403)
        .send(
          errorBody(
            new TokenwardenError(
              "forbidden",
              "this API key's role (client) may read tokens, connections and events and use the proxy, nothing else",
            ),
          ),
        );
    };
    if (presented === undefined) return refuse(reply, false);
    const verdict = keys.verify(presented, request.raw.socket);
    if (!(verdict instanceof Promise)) return decide(verdict);
    verdict.then(decide, (error: unknown) => done(error as Error));
  };
}

/** The key in `Authorization: Bearer <key>`, the one way a key is presented. */
export function presentedKey(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  return BEARER.exec(authorization)?.[1];
}

const BEARER = /^Bearer\s+(\S+)$/i;

function refuse(reply: FastifyReply, presented: boolean): void {
  reply.errorCode = "unauthorized";
  reply
    .code(401)
    .header("www-authenticate", 'Bearer realm="tokenwarden"')
    .send(
      errorBody(
        new TokenwardenError(
          "unauthorized",
          presented
            ? "this API key is not valid"
            : "send an API key as Authorization: Bearer <key>",
        ),
      ),
    );
}

/**
 * Refuses (`forbidden`) a connection outside the presented key's limits. A key
 * without limits costs nothing here; a limited one asks the broker, which caches.
 */
export async function assertConnectionAllowed(
  request: FastifyRequest,
  tw: Tokenwarden,
  id: string,
): Promise<void> {
  await connectionLimits(request, tw, id);
}

/**
 * `assertConnectionAllowed` for the hot paths (a token read, the proxy): a key
 * without limits is let through at once, with no promise made; a limited one gets a
 * promise to await. Throws, or rejects, `forbidden`.
 */
export function connectionLimits(
  request: FastifyRequest,
  tw: Tokenwarden,
  id: string,
): Promise<void> | undefined {
  const grant = request.apiKey;
  if (grant === null) throw outOfLimits(id); // a public route never asks; deny if one does
  if (!isLimited(grant)) return undefined;
  return tw.connectionScope(id).then((scope) => {
    if (!allows(grant, scope)) throw outOfLimits(id);
  });
}

/** Keeps the connections a key may see. */
export function withinLimits<T extends { integration: string; environment: string }>(
  request: FastifyRequest,
  items: readonly T[],
): T[] {
  const grant = request.apiKey;
  if (grant === null) return [];
  return isLimited(grant) ? items.filter((item) => allows(grant, item)) : [...items];
}

function outOfLimits(id: string): TokenwardenError {
  return new TokenwardenError(
    "forbidden",
    `this API key may not use connection ${id} (outside its integrations or environments)`,
  );
}
