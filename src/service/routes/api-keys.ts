/**
 * `/v1/api-keys`: list, create (the key is in the answer, the only time it is seen;
 * only its hash is stored) and delete. Admin keys only. A deleted key stops opening
 * the service within the key ring's reload interval (a few seconds).
 */
import { z } from "zod";
import { idSchema } from "../../core/integration.js";
import { defineRoute } from "../route.js";
import type { RouteModule } from "./context.js";

const apiKeyParams = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "is not an API key id"),
});

const newApiKey = z.strictObject({
  name: z.string().trim().min(1).max(100).describe("What it is for"),
  role: z.enum(["admin", "client"]).optional().describe("Default admin"),
  integrations: z.array(idSchema).optional().describe("A client key only for these"),
  environments: z.array(z.string().max(64)).optional().describe("A client key only for these"),
});

export const apiKeyRoutes: RouteModule = (app, { tw }) => {
  defineRoute(app, {
    method: "GET",
    url: "/v1/api-keys",
    operationId: "listApiKeys",
    summary: "List API keys (ids, names, roles, limits; the keys themselves are not kept)",
    tags: ["api-keys"],
    responses: { 200: { description: "Every stored key", schema: "ApiKeyList" } },
    handler: async () => ({ apiKeys: await tw.apiKeys.list() }),
  });
  defineRoute(app, {
    method: "POST",
    url: "/v1/api-keys",
    operationId: "createApiKey",
    summary: "Create an API key; the answer holds the key, the only time it is shown",
    tags: ["api-keys"],
    body: newApiKey,
    responses: { 201: { description: "Created", schema: "CreatedApiKey" } },
    handler: async ({ body }, _request, reply) => {
      const created = await tw.apiKeys.create(body);
      reply.code(201).header("cache-control", "no-store");
      return created;
    },
  });
  defineRoute(app, {
    method: "DELETE",
    url: "/v1/api-keys/:id",
    operationId: "deleteApiKey",
    summary: "Delete an API key",
    tags: ["api-keys"],
    params: apiKeyParams,
    responses: { 204: { description: "Deleted" } },
    handler: async ({ params }, _request, reply) => {
      await tw.apiKeys.delete(params.id);
      reply.code(204);
    },
  });
};
