import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { parseOrThrow } from "../core/validation.js";
import type { RouteAccess } from "./access.js";

/**
 * One route, one set of zod schemas: they validate the request (with Tokenwarden's
 * field-naming errors) and, turned into JSON Schema, document it in /openapi.json.
 * Fastify's own validator is off (server.ts), so the two can never disagree.
 */
export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: "GET" | "PUT" | "POST" | "DELETE";
  url: string;
  /** Who may call it (access.ts); left out, admin keys only. */
  access?: RouteAccess;
  summary: string;
  tags: string[];
  params?: P;
  query?: Q;
  body?: B;
  /**
   * A body documented but validated further in (the broker parses integrations and
   * connections itself, merging the key from the path and keeping unsent secrets).
   */
  documentedBody?: z.ZodType;
  /** Documented responses: status to description. */
  responses?: Record<number, string>;
  handler: (
    input: { params: z.output<P>; query: z.output<Q>; body: z.output<B> },
    request: FastifyRequest,
    reply: FastifyReply,
  ) => Promise<unknown>;
}

export function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, {
    io: "input",
    unrepresentable: "any",
  }) as Record<string, unknown>;
  return rest;
}

export function defineRoute<
  P extends z.ZodType = z.ZodUnknown,
  Q extends z.ZodType = z.ZodUnknown,
  B extends z.ZodType = z.ZodUnknown,
>(app: FastifyInstance, spec: RouteSpec<P, Q, B>): void {
  app.route({
    method: spec.method,
    url: spec.url,
    config: { access: spec.access ?? "admin" },
    schema: {
      summary: spec.summary,
      tags: spec.tags,
      ...(spec.params === undefined ? {} : { params: jsonSchemaOf(spec.params) }),
      ...(spec.query === undefined ? {} : { querystring: jsonSchemaOf(spec.query) }),
      ...(spec.body === undefined ? {} : { body: jsonSchemaOf(spec.body) }),
      ...(spec.documentedBody === undefined ? {} : { body: jsonSchemaOf(spec.documentedBody) }),
      ...(spec.responses === undefined
        ? {}
        : {
            response: Object.fromEntries(
              Object.entries(spec.responses).map(([status, description]) => [
                status,
                { description },
              ]),
            ),
          }),
    },
    handler: async (request, reply) => {
      const input = {
        params: (spec.params === undefined
          ? request.params
          : parseOrThrow(spec.params, request.params)) as z.output<P>,
        query: (spec.query === undefined
          ? request.query
          : parseOrThrow(spec.query, request.query)) as z.output<Q>,
        body: (spec.body === undefined
          ? request.body
          : parseOrThrow(spec.body, request.body ?? {})) as z.output<B>,
      };
      return spec.handler(input, request, reply);
    },
  });
}
