/**
 * `/healthz` (the process answers), `/readyz` (the database too), `/metrics`. All
 * public: probes and scrapers carry no key, and none of them tells a secret (metrics
 * are counts by status and durations, never ids or names).
 */
import type { FastifyInstance } from "fastify";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { STORAGE_RETRY_AFTER_SECONDS } from "../store/storage-errors.js";
import type { ServiceMetrics } from "./metrics.js";
import { defineRoute } from "./route.js";

export function registerOperations(
  app: FastifyInstance,
  tw: Tokenwarden,
  metrics: ServiceMetrics,
): void {
  defineRoute(app, {
    method: "GET",
    url: "/healthz",
    operationId: "health",
    summary: "The process is up",
    tags: ["operations"],
    access: "public",
    responses: { 200: { description: "Up", schema: "Health" } },
    handler: async () => ({ status: "ok" }),
  });
  defineRoute(app, {
    method: "GET",
    url: "/readyz",
    operationId: "readiness",
    summary: "The database answers and every migration has run",
    tags: ["operations"],
    access: "public",
    responses: {
      200: { description: "Ready", schema: "Readiness" },
      503: { description: "The database does not answer", schema: "Readiness" },
    },
    handler: async (_input, _request, reply) => {
      const { ready, database } = await tw.ready();
      reply.code(ready ? 200 : 503);
      if (!ready) reply.header("retry-after", String(STORAGE_RETRY_AFTER_SECONDS));
      return { status: ready ? "ready" : "unavailable", database };
    },
  });
  defineRoute(app, {
    method: "GET",
    url: "/metrics",
    operationId: "metrics",
    summary: "Prometheus metrics",
    tags: ["operations"],
    access: "public",
    responses: { 200: { description: "The text exposition format", media: "text/plain" } },
    handler: async (_input, _request, reply) => {
      reply.header("content-type", metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  });
}
