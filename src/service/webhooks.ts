/**
 * `/v1/webhooks`: admin keys only (no `access`
 * given). The signing secret is in the answer that creates a webhook, and never again.
 */
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { idSchema } from "../core/integration.js";
import { DELIVERY_STATUSES, webhookInputSchema } from "../core/webhook.js";
import { defineRoute } from "./route.js";

const idParams = z.strictObject({ id: idSchema });
const deliveriesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  before: z.coerce.number().int().positive().optional(),
  status: z.enum(DELIVERY_STATUSES).optional(),
});

export function registerWebhookRoutes(app: FastifyInstance, tw: Tokenwarden): void {
  const tags = ["webhooks"];
  defineRoute(app, {
    method: "GET",
    url: "/v1/webhooks",
    operationId: "listWebhooks",
    summary: "List webhooks (without their secrets)",
    tags,
    responses: { 200: { description: "The webhooks", schema: "WebhookList" } },
    handler: async () => ({ webhooks: await tw.webhooks.list() }),
  });
  defineRoute(app, {
    method: "GET",
    url: "/v1/webhooks/:id",
    operationId: "getWebhook",
    summary: "Show a webhook (without its secret)",
    tags,
    responses: { 200: { description: "The webhook", schema: "WebhookView" } },
    params: idParams,
    handler: async ({ params }) => tw.webhooks.get(params.id),
  });
  defineRoute(app, {
    method: "PUT",
    url: "/v1/webhooks/:id",
    operationId: "putWebhook",
    summary:
      "Create or update a webhook { url, events, enabled }; the answer that creates it holds its signing secret, shown once",
    tags,
    params: idParams,
    documentedBody: webhookInputSchema,
    responses: {
      200: { description: "Updated", schema: "WebhookView" },
      201: { description: "Created, with `secret` (shown once)", schema: "WebhookView" },
    },
    handler: async ({ params }, request, reply) => {
      const { webhook, created } = await tw.webhooks.put(params.id, request.body ?? {});
      reply.code(created ? 201 : 200).header("cache-control", "no-store");
      return webhook;
    },
  });
  defineRoute(app, {
    method: "DELETE",
    url: "/v1/webhooks/:id",
    operationId: "deleteWebhook",
    summary: "Delete a webhook and its deliveries",
    tags,
    responses: { 204: { description: "Deleted" } },
    params: idParams,
    handler: async ({ params }, _request, reply) => {
      await tw.webhooks.remove(params.id);
      reply.code(204);
    },
  });
  defineRoute(app, {
    method: "GET",
    url: "/v1/webhooks/:id/deliveries",
    operationId: "listWebhookDeliveries",
    responses: { 200: { description: "A page of deliveries", schema: "DeliveryPage" } },
    summary: "A webhook's deliveries, newest first, with their status (?status=, ?before=)",
    tags,
    params: idParams,
    query: deliveriesQuery,
    handler: async ({ params, query }) => {
      const deliveries = await tw.webhooks.deliveries(params.id, {
        limit: query.limit,
        ...(query.before === undefined ? {} : { beforeId: query.before }),
        ...(query.status === undefined ? {} : { status: query.status }),
      });
      return {
        deliveries,
        next: deliveries.length === query.limit ? (deliveries.at(-1)?.id ?? null) : null,
      };
    },
  });
}
