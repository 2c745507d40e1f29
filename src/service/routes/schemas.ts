/** `GET /v1/schemas`: what the admin page must know about the model (admin-schemas.ts). */
import { adminSchemas } from "../admin-schemas.js";
import { defineRoute } from "../route.js";
import type { RouteModule } from "./context.js";

export const schemaRoutes: RouteModule = (app, { redirectUri }) => {
  defineRoute(app, {
    method: "GET",
    url: "/v1/schemas",
    operationId: "getSchemas",
    summary:
      "The JSON Schemas of an integration and a connection, their secret fields, each grant's fields, the statuses and what each allows (the admin page is built from them)",
    tags: ["admin"],
    responses: { 200: { description: "The model, for forms", schema: "AdminSchemas" } },
    handler: async () => adminSchemas(redirectUri),
  });
};
