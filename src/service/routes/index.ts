/**
 * Every route of the service, one module per resource. Each handler only translates
 * HTTP to a broker call and back. A new resource is a module and one line here; who
 * may call each route is said on the route (access.ts: admin unless it says otherwise).
 */
import type { FastifyInstance } from "fastify";
import { registerAdminPage } from "../admin.js";
import { registerEventStream } from "../event-stream.js";
import { registerOperations } from "../operations.js";
import { registerProxy } from "../proxy.js";
import { apiKeyRoutes } from "./api-keys.js";
import { authorizationRoutes } from "./authorization.js";
import { connectionRoutes } from "./connections.js";
import type { RouteContext, RouteModule } from "./context.js";
import { importRoutes } from "./import.js";
import { integrationRoutes } from "./integrations.js";
import { presetRoutes } from "./presets.js";
import { schemaRoutes } from "./schemas.js";
import { tokenRoutes } from "./tokens.js";

export type { RouteContext, RouteModule } from "./context.js";

export const ROUTE_MODULES: readonly RouteModule[] = [
  integrationRoutes,
  connectionRoutes,
  tokenRoutes,
  schemaRoutes,
  presetRoutes,
  apiKeyRoutes,
  importRoutes,
  (app, { tw }) => registerEventStream(app, tw),
  authorizationRoutes,
  (app, { tw, metrics }) => registerProxy(app, tw, metrics),
  (app, { tw, metrics }) => registerOperations(app, tw, metrics),
  (app, { publicUrl }) => registerAdminPage(app, publicUrl),
];

export function registerRoutes(app: FastifyInstance, context: RouteContext): void {
  for (const register of ROUTE_MODULES) register(app, context);
}
