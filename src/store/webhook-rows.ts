/**
 * The webhook tables' rows as the store hands them out (webhook-store.ts): endpoints,
 * deliveries, a delivery checked out for an attempt and its outcome, and the status a
 * lifecycle event reads. Also the context an endpoint's secret is sealed under.
 */
import type { Selectable } from "kysely";
import type { ConnectionStatus, ErrorSummary } from "../core/connection.js";
import type { DeliveryStatus, Webhook } from "../core/webhook.js";
import type { WebhookDeliveriesTable, WebhooksTable } from "./schema.js";

export const webhookSecretContext = (id: string) => `webhook:${id}:secret`;

export interface StoredWebhook extends Webhook {
  createdAt: number;
  updatedAt: number;
}

export interface Delivery {
  id: number;
  messageId: string;
  webhookId: string;
  type: string;
  connectionId: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number | null;
  createdAt: number;
  lastAttemptAt: number | null;
  lastHttpStatus: number | null;
  lastError: string | null;
  deliveredAt: number | null;
}

/** A delivery checked out for an attempt, with what sending it needs. */
export interface ClaimedDelivery extends Delivery {
  payload: string;
  url: string;
  secret: string;
  enabled: boolean;
}

export interface AttemptOutcome {
  ok: boolean;
  httpStatus: number | null;
  error: string | null;
  /** After a failure: when to try again, `null` to give up. */
  nextAttemptAt: number | null;
}

/** A connection's status and what a lifecycle event says of it, read under a row lock. */
export interface StatusSnapshot {
  status: ConnectionStatus;
  integration: string;
  environment: string;
  lastError: ErrorSummary | null;
}

export function parseEvents(text: string): string[] {
  const parsed: unknown = JSON.parse(text);
  return Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === "string") : [];
}

export function webhookFrom(row: Selectable<WebhooksTable>): StoredWebhook {
  return {
    id: row.id,
    url: row.url,
    events: parseEvents(row.events) as Webhook["events"],
    enabled: Number(row.enabled) === 1,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function numberOrNull(value: number | null): number | null {
  return value === null ? null : Number(value);
}

export function deliveryFrom(row: Selectable<WebhookDeliveriesTable>): Delivery {
  return {
    id: Number(row.id),
    messageId: row.message_id,
    webhookId: row.webhook_id,
    type: row.type,
    connectionId: row.connection_id,
    status: row.status as DeliveryStatus,
    attempts: Number(row.attempts),
    nextAttemptAt: numberOrNull(row.next_attempt_at),
    createdAt: Number(row.created_at),
    lastAttemptAt: numberOrNull(row.last_attempt_at),
    lastHttpStatus: numberOrNull(row.last_http_status),
    lastError: row.last_error,
    deliveredAt: numberOrNull(row.delivered_at),
  };
}
