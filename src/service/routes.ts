import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { CONNECTION_STATUSES, connectionSchema } from "../core/connection.js";
import { invalidConfig, TokenwardenError } from "../core/errors.js";
import { idSchema, integrationSchema } from "../core/integration.js";
import { assertConnectionAllowed, PUBLIC, withinLimits } from "./access.js";
import { adminSchemas } from "./admin-schemas.js";
import { registerEventStream } from "./event-stream.js";
import { callbackPage } from "./pages.js";
import { registerPresetRoutes } from "./presets-routes.js";
import { defineRoute } from "./route.js";

/**
 * The `/v1` management and token routes of PRODUCT.md ("Service"), and the OAuth
 * redirect. Each handler only translates HTTP to a broker call and back.
 */
export interface RouteContext {
  tw: Tokenwarden;
  /** Base of the redirect URL, e.g. http://127.0.0.1:4180. */
  publicUrl: string;
  /** The folder module refresh hooks must lie in (hook-policy.ts); none: refused. */
  hooksDir: string | undefined;
}

const keyParams = z.strictObject({ key: idSchema });
const idParams = z.strictObject({ id: idSchema });
const connectionFilter = z.strictObject({
  integration: idSchema.optional(),
  status: z.enum(CONNECTION_STATUSES).optional(),
  environment: z.string().optional(),
});
const tokenQuery = z.strictObject({
  minTtl: z.coerce.number().int("must be a whole number of seconds").min(0).max(86_400).optional(),
});
const eventsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  before: z.coerce.number().int().positive().optional(),
});

/** GET, PUT (201 when it creates, 200 when it replaces) and DELETE of one resource. */
function registerResource(
  app: FastifyInstance,
  spec: {
    path: string;
    idField: "key" | "id";
    noun: string;
    params: typeof keyParams | typeof idParams;
    documentedBody: z.ZodType;
    exists: (id: string) => Promise<boolean>;
    /** Given, client keys may read one too, once this lets them (it throws `forbidden`). */
    clientRead?: (request: FastifyRequest, id: string) => Promise<void>;
    get: (id: string) => Promise<unknown>;
    put: (body: unknown) => Promise<unknown>;
    remove: (id: string) => Promise<void>;
    deleteSummary: string;
  },
): void {
  const tags = [`${spec.noun}s`];
  const idOf = (params: Record<string, string>) => params[spec.idField] as string;
  defineRoute(app, {
    method: "GET",
    url: spec.path,
    summary: `Show a ${spec.noun} (secrets only as { set })`,
    tags,
    params: spec.params,
    ...(spec.clientRead === undefined ? {} : { access: "client" as const }),
    handler: async ({ params }, request) => {
      await spec.clientRead?.(request, idOf(params));
      return spec.get(idOf(params));
    },
  });
  defineRoute(app, {
    method: "PUT",
    url: spec.path,
    summary: `Create or replace a ${spec.noun}; a secret left out is kept, null removes it`,
    tags,
    params: spec.params,
    documentedBody: spec.documentedBody,
    responses: { 200: "Replaced", 201: "Created", 400: "Invalid, with the field named" },
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
    summary: spec.deleteSummary,
    tags,
    params: spec.params,
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

export function registerRoutes(
  app: FastifyInstance,
  { tw, publicUrl, hooksDir }: RouteContext,
): void {
  const redirectUri = `${publicUrl}/oauth/callback`;
  registerPresetRoutes(app, tw);

  // Integrations ------------------------------------------------------------------
  defineRoute(app, {
    method: "GET",
    url: "/v1/integrations",
    summary: "List integrations",
    tags: ["integrations"],
    handler: async () => ({ integrations: await tw.listIntegrations() }),
  });
  registerResource(app, {
    path: "/v1/integrations/:key",
    idField: "key",
    noun: "integration",
    params: keyParams,
    documentedBody: integrationSchema,
    exists: async (key) => (await tw.store.getIntegration(key)) !== undefined,
    get: (key) => tw.getIntegration(key),
    put: (body) => tw.putIntegration(body, { moduleHooks: { dir: hooksDir } }),
    remove: (key) => tw.deleteIntegration(key),
    deleteSummary: "Delete an integration that no connection uses",
  });

  // Connections -------------------------------------------------------------------
  defineRoute(app, {
    method: "GET",
    url: "/v1/connections",
    summary: "List connections (?integration=, ?status=, ?environment=)",
    tags: ["connections"],
    access: "client",
    query: connectionFilter,
    handler: async ({ query }, request) => ({
      // A client key sees only the connections within its limits.
      connections: withinLimits(
        request,
        await tw.listConnections({
          ...(query.integration === undefined ? {} : { integration: query.integration }),
          ...(query.status === undefined ? {} : { status: query.status }),
          ...(query.environment === undefined ? {} : { environment: query.environment }),
        }),
      ),
    }),
  });
  registerResource(app, {
    path: "/v1/connections/:id",
    idField: "id",
    noun: "connection",
    params: idParams,
    documentedBody: connectionSchema,
    exists: async (id) => (await tw.store.getConnection(id)) !== undefined,
    clientRead: (request, id) => assertConnectionAllowed(request, tw, id),
    get: (id) => tw.getConnection(id),
    put: (body) => tw.putConnection(body),
    remove: (id) => tw.deleteConnection(id),
    deleteSummary: "Delete a connection (its tokens are forgotten, not revoked)",
  });

  // Tokens ------------------------------------------------------------------------
  defineRoute(app, {
    method: "GET",
    url: "/v1/connections/:id/token",
    summary: "A valid access token, with the header to send",
    tags: ["tokens"],
    access: "client",
    params: idParams,
    query: tokenQuery,
    handler: async ({ params, query }, request, reply) => {
      await assertConnectionAllowed(request, tw, params.id);
      reply.header("cache-control", "no-store");
      return tw.getToken(
        params.id,
        query.minTtl === undefined ? {} : { minTtlSeconds: query.minTtl },
      );
    },
  });
  defineRoute(app, {
    method: "POST",
    url: "/v1/connections/:id/refresh",
    summary: "Refresh now",
    tags: ["tokens"],
    params: idParams,
    handler: async ({ params }) => tw.refresh(params.id),
  });
  defineRoute(app, {
    method: "POST",
    url: "/v1/connections/:id/revoke",
    summary: "Revoke at the server (RFC 7009) and forget the tokens",
    tags: ["tokens"],
    params: idParams,
    handler: async ({ params }) => tw.revoke(params.id),
  });
  defineRoute(app, {
    method: "GET",
    url: "/v1/connections/:id/events",
    summary: "The event history, newest first; page with ?before=<id of the last event seen>",
    tags: ["tokens"],
    access: "client",
    params: idParams,
    query: eventsQuery,
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

  // For the admin page -----------------------------------------------------------
  defineRoute(app, {
    method: "GET",
    url: "/v1/schemas",
    summary:
      "The JSON Schemas of an integration and a connection, their secret fields, each grant's fields, the statuses and what each allows (the admin page is built from them)",
    tags: ["admin"],
    handler: async () => adminSchemas(redirectUri),
  });

  registerEventStream(app, tw);

  // Authorization code ------------------------------------------------------------
  defineRoute(app, {
    method: "GET",
    url: "/v1/connections/:id/authorize",
    summary:
      "Start the authorization code grant: a redirect to the server (or { url } with Accept: application/json)",
    tags: ["authorization"],
    params: idParams,
    responses: {
      302: "To the authorization server",
      200: "{ url, state, expiresAt, redirectUri }",
    },
    handler: async ({ params }, request, reply) => {
      const started = await tw.startAuthorization(params.id, { redirectUri });
      reply.header("cache-control", "no-store");
      if ((request.headers.accept ?? "").includes("application/json")) {
        return { url: started.url, expiresAt: started.expiresAt, redirectUri };
      }
      return reply.redirect(started.url, 302);
    },
  });

  app.get(
    "/oauth/callback",
    // Public: the browser comes back from the authorization server without a key; the
    // one-time state (bound server-side to one connection) is what it must carry.
    {
      config: PUBLIC,
      schema: { summary: "The redirect URL", tags: ["authorization"], security: [] },
    },
    async (request, reply) => {
      const query = new URLSearchParams(request.query as Record<string, string>);
      const openerOrigin = new URL(publicUrl).origin;
      let page: ReturnType<typeof callbackPage>;
      let status = 200;
      try {
        const connection = await tw.completeAuthorization(query);
        page = callbackPage(
          {
            ok: true,
            connectionId: connection.id,
            status: connection.status,
            title: "OAuth2 token received with success!",
            detail: `Connection ${connection.id} is ${connection.status}. You can close this window.`,
          },
          openerOrigin,
        );
      } catch (error) {
        if (!(error instanceof TokenwardenError)) throw error;
        const requestFault = ["not_found", "invalid_config", "conflict"].includes(error.code);
        status = requestFault ? 400 : error.oauthError === "access_denied" ? 403 : 502;
        const title = requestFault
          ? "This authorization link has expired or was already used"
          : error.oauthError === "access_denied"
            ? "Access was denied"
            : "The authorization did not complete";
        const detail = requestFault
          ? "Start the authorization again from Tokenwarden."
          : error.oauthError === "access_denied"
            ? `The authorization server answered access_denied${error.oauthErrorDescription === undefined ? "" : `: ${error.oauthErrorDescription}`}. Nothing was changed.`
            : error.message;
        page = callbackPage(
          { ok: false, error: error.oauthError ?? error.code, title, detail },
          openerOrigin,
        );
      }
      reply
        .code(status)
        .header("content-type", "text/html; charset=utf-8")
        .header("content-security-policy", page.csp)
        .header("cache-control", "no-store")
        .header("referrer-policy", "no-referrer");
      return page.html;
    },
  );
}
