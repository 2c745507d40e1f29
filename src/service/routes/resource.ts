/**
 * GET, PUT (201 when it creates, 200 when it replaces) and DELETE of one named
 * resource (an integration by key, a connection by id), the same way for each.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { invalidConfig, TokenwardenError } from "../../core/errors.js";
import { idSchema } from "../../core/integration.js";
import type { ResponseComponent } from "../response-schemas.js";
import { defineRoute } from "../route.js";

export const keyParams = z.strictObject({ key: idSchema });
export const idParams = z.strictObject({ id: idSchema });

export interface ResourceSpec {
  path: string;
  idField: "key" | "id";
  /** Singular, as in summaries; its plural is the tag. */
  noun: string;
  /** Capitalized, for operation ids: `getIntegration`, `putConnection`. */
  name: string;
  params: typeof keyParams | typeof idParams;
  documentedBody: z.ZodType;
  /** The component (response-schemas.ts) its GET and PUT answer with. */
  view: ResponseComponent;
  exists: (id: string) => Promise<boolean>;
  /** Given, client keys may read one too, once this lets them (it throws `forbidden`). */
  clientRead?: (request: FastifyRequest, id: string) => Promise<void>;
  get: (id: string) => Promise<unknown>;
  put: (body: unknown) => Promise<unknown>;
  remove: (id: string) => Promise<void>;
  deleteSummary: string;
}

export function registerResource(app: FastifyInstance, spec: ResourceSpec): void {
  const tags = [`${spec.noun}s`];
  const idOf = (params: Record<string, string>) => params[spec.idField] as string;
  defineRoute(app, {
    method: "GET",
    url: spec.path,
    operationId: `get${spec.name}`,
    summary: `Show a ${spec.noun} (secrets only as { set })`,
    tags,
    params: spec.params,
    ...(spec.clientRead === undefined ? {} : { access: "client" as const }),
    responses: { 200: { description: `The ${spec.noun}`, schema: spec.view } },
    handler: async ({ params }, request) => {
      await spec.clientRead?.(request, idOf(params));
      return spec.get(idOf(params));
    },
  });
  defineRoute(app, {
    method: "PUT",
    url: spec.path,
    operationId: `put${spec.name}`,
    summary: `Create or replace a ${spec.noun}; a secret left out is kept, null removes it`,
    tags,
    params: spec.params,
    documentedBody: spec.documentedBody,
    responses: {
      200: { description: "Replaced", schema: spec.view },
      201: { description: "Created", schema: spec.view },
    },
    handler: async ({ params }, request, reply) => {
      const id = idOf(params);
      const existed = await spec.exists(id);
      const view = await spec.put(withPathId(request.body, spec.idField, id));
      reply.code(existed ? 200 : 201);
      return view;
    },
  });
  defineRoute(app, {
    method: "DELETE",
    url: spec.path,
    operationId: `delete${spec.name}`,
    summary: spec.deleteSummary,
    tags,
    params: spec.params,
    responses: { 204: { description: "Deleted" } },
    handler: async ({ params }, _request, reply) => {
      await spec.remove(idOf(params));
      reply.code(204);
    },
  });
}

/** The body's key/id must match the path's, or be left out. */
function withPathId(body: unknown, field: "key" | "id", value: string): unknown {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new TokenwardenError("invalid_config", "body: must be a JSON object", { field: "body" });
  }
  const record = body as Record<string, unknown>;
  if (record[field] !== undefined && record[field] !== value) {
    throw invalidConfig(field, `is ${String(record[field])} in the body but ${value} in the path`);
  }
  return { ...record, [field]: value };
}
