import type { FastifyInstance } from "fastify";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { STORAGE_RETRY_AFTER_SECONDS } from "../store/storage-errors.js";
import { PUBLIC } from "./access.js";
import type { ServiceMetrics } from "./metrics.js";

/**
 * `/healthz` (the process answers), `/readyz` (the database too), `/metrics`. All
 * public: probes and scrapers carry no key, and none of them tells a secret (metrics
 * are counts by status and durations, never ids or names).
 */
export function registerOperations(
  app: FastifyInstance,
  tw: Tokenwarden,
  metrics: ServiceMetrics,
): void {
  app.get(
    "/healthz",
    {
      config: PUBLIC,
      schema: { summary: "The process is up", tags: ["operations"], security: [] },
    },
    async () => ({
      status: "ok",
    }),
  );
  app.get(
    "/readyz",
    {
      config: PUBLIC,
      schema: {
        summary: "The database answers and every migration has run",
        tags: ["operations"],
        security: [],
      },
    },
    async (_request, reply) => {
      const { ready, database } = await tw.ready();
      reply.code(ready ? 200 : 503);
      if (!ready) reply.header("retry-after", String(STORAGE_RETRY_AFTER_SECONDS));
      return { status: ready ? "ready" : "unavailable", database };
    },
  );
  app.get(
    "/metrics",
    {
      config: PUBLIC,
      schema: { summary: "Prometheus metrics", tags: ["operations"], security: [] },
    },
    async (_request, reply) => {
      reply.header("content-type", metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );
}
