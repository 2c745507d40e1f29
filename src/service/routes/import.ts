/**
 * `POST /v1/import`: a declarative file's integrations and connections (the
 * `--config` shape, read and `${VAR}`-substituted by the caller) upserted in one
 * transaction: all land or none. Admin keys only. Module refresh hooks are confined
 * to --hooks-dir as on `PUT /v1/integrations/:key`.
 */
import { z } from "zod";
import { defineRoute } from "../route.js";
import type { RouteModule } from "./context.js";

const catalogueDocument = z.strictObject({
  integrations: z.array(z.record(z.string(), z.unknown())).default([]),
  connections: z.array(z.record(z.string(), z.unknown())).default([]),
});

export const importRoutes: RouteModule = (app, { tw, hooksDir }) => {
  defineRoute(app, {
    method: "POST",
    url: "/v1/import",
    operationId: "importCatalogue",
    summary:
      "Create or replace integrations and connections in one transaction (a secret left out is kept)",
    tags: ["integrations"],
    body: catalogueDocument,
    responses: { 200: { description: "How many were written", schema: "ImportReport" } },
    handler: async ({ body }) => tw.applyDeclarative(body, { moduleHooks: { dir: hooksDir } }),
  });
};
