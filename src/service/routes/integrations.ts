/** `/v1/integrations`: list, and GET/PUT/DELETE one by key (admin keys only). */
import { integrationSchema } from "../../core/integration.js";
import { defineRoute } from "../route.js";
import type { RouteModule } from "./context.js";
import { keyParams, registerResource } from "./resource.js";

export const integrationRoutes: RouteModule = (app, { tw, hooksDir }) => {
  defineRoute(app, {
    method: "GET",
    url: "/v1/integrations",
    operationId: "listIntegrations",
    summary: "List integrations",
    tags: ["integrations"],
    responses: { 200: { description: "Every integration", schema: "IntegrationList" } },
    handler: async () => ({ integrations: await tw.listIntegrations() }),
  });
  registerResource(app, {
    path: "/v1/integrations/:key",
    idField: "key",
    noun: "integration",
    name: "Integration",
    params: keyParams,
    documentedBody: integrationSchema,
    view: "IntegrationView",
    exists: async (key) => (await tw.findIntegration(key)) !== undefined,
    get: (key) => tw.getIntegration(key),
    put: (body) => tw.putIntegration(body, { moduleHooks: { dir: hooksDir } }),
    remove: (key) => tw.deleteIntegration(key),
    deleteSummary: "Delete an integration that no connection uses",
  });
};
