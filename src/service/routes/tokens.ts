/**
 * A connection's token and its history: read the token (the hot path: a client key
 * without limits costs no database read, and a cached token's body is written once;
 * the commonest read is answered before this route, token-read-lane.ts), a DPoP proof
 * to go with it, refresh now, revoke, and the events.
 */
import { z } from "zod";
import { assertConnectionAllowed, connectionLimits } from "../access.js";
import { defineRoute } from "../route.js";
import { JSON_TYPE } from "../token-read-lane.js";
import type { RouteModule } from "./context.js";
import { idParams } from "./resource.js";

const tokenQuery = z.strictObject({
  minTtl: z.coerce.number().int("must be a whole number of seconds").min(0).max(86_400).optional(),
});
const dpopProofBody = z.strictObject({
  method: z.string().regex(/^[A-Za-z]{1,16}$/, "must be an HTTP method"),
  url: z.string().min(1).max(8192),
});
const eventsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  before: z.coerce.number().int().positive().optional(),
});

export const tokenRoutes: RouteModule = (app, { tw, tokenBodies }) => {
  defineRoute(app, {
    method: "GET",
    url: "/v1/connections/:id/token",
    operationId: "getToken",
    summary: "A valid access token, with the header to send",
    tags: ["tokens"],
    access: "client",
    params: idParams,
    query: tokenQuery,
    responses: { 200: { description: "The token", schema: "AccessToken" } },
    handler: async ({ params, query }, request, reply) => {
      const limits = connectionLimits(request, tw, params.id);
      if (limits !== undefined) await limits;
      const token = await tw.getToken(
        params.id,
        query.minTtl === undefined ? {} : { minTtlSeconds: query.minTtl },
      );
      // A string with its JSON type is sent as it is, past the serializer.
      return reply.header("cache-control", "no-store").type(JSON_TYPE).send(tokenBodies.of(token));
    },
  });
  defineRoute(app, {
    method: "POST",
    url: "/v1/connections/:id/dpop-proof",
    operationId: "createDpopProof",
    summary:
      "A DPoP proof (RFC 9449) for a call the workflow makes itself with this connection's token",
    tags: ["tokens"],
    access: "client",
    params: idParams,
    body: dpopProofBody,
    responses: { 200: { description: "The proof", schema: "DpopProof" } },
    handler: async ({ params, body }, request, reply) => {
      await assertConnectionAllowed(request, tw, params.id);
      reply.header("cache-control", "no-store");
      return tw.dpopProof(params.id, body);
    },
  });
  defineRoute(app, {
    method: "POST",
    url: "/v1/connections/:id/refresh",
    operationId: "refreshConnection",
    summary: "Refresh now",
    tags: ["tokens"],
    params: idParams,
    responses: { 200: { description: "The connection after it", schema: "ConnectionView" } },
    handler: async ({ params }) => tw.refresh(params.id),
  });
  defineRoute(app, {
    method: "POST",
    url: "/v1/connections/:id/revoke",
    operationId: "revokeConnection",
    summary: "Revoke at the server (RFC 7009) and forget the tokens",
    tags: ["tokens"],
    params: idParams,
    responses: { 200: { description: "The connection after it", schema: "ConnectionView" } },
    handler: async ({ params }) => tw.revoke(params.id),
  });
  defineRoute(app, {
    method: "GET",
    url: "/v1/connections/:id/events",
    operationId: "listConnectionEvents",
    summary: "The event history, newest first; page with ?before=<id of the last event seen>",
    tags: ["tokens"],
    access: "client",
    params: idParams,
    query: eventsQuery,
    responses: { 200: { description: "One page of events", schema: "EventPage" } },
    handler: async ({ params, query }, request) => {
      await assertConnectionAllowed(request, tw, params.id);
      await tw.getConnection(params.id); // 404 for an unknown connection, not an empty page
      const events = await tw.listEvents(params.id, {
        limit: query.limit,
        ...(query.before === undefined ? {} : { beforeId: query.before }),
      });
      return { events, next: events.length === query.limit ? (events.at(-1)?.id ?? null) : null };
    },
  });
};
