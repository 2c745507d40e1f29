/**
 * `/v1/connections`: list (filtered), and GET/PUT/DELETE one by id. Client keys may
 * list and read the connections within their limits; writes are for admin keys.
 */
import { z } from "zod";
import { CONNECTION_STATUSES, connectionSchema } from "../../core/connection.js";
import { idSchema } from "../../core/integration.js";
import { assertConnectionAllowed, withinLimits } from "../access.js";
import { defineRoute } from "../route.js";
import type { RouteModule } from "./context.js";
import { idParams, registerResource } from "./resource.js";

const connectionFilter = z.strictObject({
  integration: idSchema.optional(),
  status: z.enum(CONNECTION_STATUSES).optional(),
  environment: z.string().optional(),
});

export const connectionRoutes: RouteModule = (app, { tw }) => {
  defineRoute(app, {
    method: "GET",
    url: "/v1/connections",
    operationId: "listConnections",
    summary: "List connections (?integration=, ?status=, ?environment=)",
    tags: ["connections"],
    access: "client",
    query: connectionFilter,
    responses: {
      200: { description: "The connections this key may see", schema: "ConnectionList" },
    },
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
    name: "Connection",
    params: idParams,
    documentedBody: connectionSchema,
    view: "ConnectionView",
    exists: async (id) => (await tw.findConnection(id)) !== undefined,
    clientRead: (request, id) => assertConnectionAllowed(request, tw, id),
    get: (id) => tw.getConnection(id),
    put: (body) => tw.putConnection(body),
    remove: (id) => tw.deleteConnection(id),
    deleteSummary: "Delete a connection (its tokens are forgotten, not revoked)",
  });
};
