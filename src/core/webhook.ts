/**
 * A webhook endpoint as configured. Its URL is
 * https://, or http:// on this machine (a sidecar); never with credentials in it,
 * which would be logged and listed.
 */
import { z } from "zod";
import { isLoopbackHost } from "./integration.js";
import { LIFECYCLE_EVENT_TYPES } from "./lifecycle.js";

export function webhookUrlProblem(text: string): string | undefined {
  if (!URL.canParse(text)) return "must be an absolute URL";
  const url = new URL(text);
  if (url.username !== "" || url.password !== "")
    return "must not hold credentials (the signature authenticates the sender)";
  if (url.hash !== "") return "must not hold a #fragment";
  if (url.protocol === "https:") return undefined;
  if (url.protocol === "http:" && isLoopbackHost(url.hostname)) return undefined;
  return "must be an https:// URL, or http:// on loopback";
}

export const webhookInputSchema = z.strictObject({
  url: z
    .string()
    .max(2048)
    .superRefine((url, ctx) => {
      const problem = webhookUrlProblem(url);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    }),
  events: z
    .array(z.enum(LIFECYCLE_EVENT_TYPES))
    .min(1, "must name at least one event")
    .default([...LIFECYCLE_EVENT_TYPES]),
  enabled: z.boolean().default(true),
});
export type WebhookInput = z.output<typeof webhookInputSchema>;

export interface Webhook extends WebhookInput {
  id: string;
}

export const DELIVERY_STATUSES = ["pending", "succeeded", "failed"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];
