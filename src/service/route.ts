/**
 * One route, one set of zod schemas: they validate the request (with Tokenwarden's
 * field-naming errors) and, turned into JSON Schema, document it in /openapi.json,
 * with its answers (response-schemas.ts) and the errors it can give. Fastify's own
 * validator and serializer are off (server.ts), so the documentation never changes
 * what is accepted or sent.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { parseOrThrow } from "../core/validation.js";
import type { RouteAccess } from "./access.js";
import type { ResponseComponent } from "./response-schemas.js";

export interface RouteResponse {
  description: string;
  /** The JSON body, by its component name; left out: no body. */
  schema?: ResponseComponent;
  /** A page (the OAuth callback) or a stream instead of JSON. */
  media?: "text/html" | "text/event-stream" | "text/plain";
}

export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: "GET" | "PUT" | "POST" | "DELETE";
  url: string;
  /** Unique across the service: a generated client's method name. */
  operationId: string;
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
  /** The answers other than errors, by status (errors are added by `errorResponses`). */
  responses: Record<number, RouteResponse>;
  handler: (
    input: { params: z.output<P>; query: z.output<Q>; body: z.output<B> },
    request: FastifyRequest,
    reply: FastifyReply,
  ) => Promise<unknown>;
}

export function jsonSchemaOf(
  schema: z.ZodType,
  io: "input" | "output" = "input",
): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, {
    io,
    unrepresentable: "any",
  }) as Record<string, unknown>;
  return rest;
}

export const componentRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** An answer in the shape @fastify/swagger turns into an OpenAPI response object. */
export function responseObject(response: RouteResponse): Record<string, unknown> {
  if (response.schema !== undefined) {
    return {
      description: response.description,
      content: { "application/json": { schema: componentRef(response.schema) } },
    };
  }
  if (response.media !== undefined) {
    return {
      description: response.description,
      content: { [response.media]: { schema: { type: "string" } } },
    };
  }
  return { description: response.description, type: "null" };
}

/** The errors a route can answer with, from what it takes and who may call it. */
export function errorResponses(spec: {
  url: string;
  access?: RouteAccess;
  takesInput: boolean;
}): Record<string, RouteResponse> {
  const error = (description: string): RouteResponse => ({ description, schema: "ErrorBody" });
  return {
    ...(spec.takesInput ? { 400: error("Invalid input, with the field named") } : {}),
    ...(spec.access === "public"
      ? {}
      : {
          401: error("No API key, or one that is not valid"),
          403: error("The key's role or limits do not allow it"),
        }),
    ...(spec.url.includes(":") ? { 404: error("No such integration or connection") } : {}),
    default: error(
      "Any other failure: a conflict or a connection needing authorization (409), the authorization server or API (502, 504), the database (503), a bug (500)",
    ),
  };
}

export function defineRoute<
  P extends z.ZodType = z.ZodUnknown,
  Q extends z.ZodType = z.ZodUnknown,
  B extends z.ZodType = z.ZodUnknown,
>(app: FastifyInstance, spec: RouteSpec<P, Q, B>): void {
  const body = spec.body ?? spec.documentedBody;
  const responses: Record<string, RouteResponse> = {
    ...errorResponses({
      url: spec.url,
      ...(spec.access === undefined ? {} : { access: spec.access }),
      takesInput: spec.params !== undefined || spec.query !== undefined || body !== undefined,
    }),
    ...spec.responses,
  };
  app.route({
    method: spec.method,
    url: spec.url,
    config: { access: spec.access ?? "admin" },
    schema: {
      operationId: spec.operationId,
      summary: spec.summary,
      tags: spec.tags,
      ...(spec.access === "public" ? { security: [] } : {}),
      ...(spec.params === undefined ? {} : { params: jsonSchemaOf(spec.params) }),
      ...(spec.query === undefined ? {} : { querystring: jsonSchemaOf(spec.query) }),
      ...(body === undefined ? {} : { body: jsonSchemaOf(body) }),
      response: Object.fromEntries(
        Object.entries(responses).map(([status, response]) => [status, responseObject(response)]),
      ),
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
