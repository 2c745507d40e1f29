import { randomBytes } from "node:crypto";
import type { Clock } from "../../core/clock.js";
import { TokenwardenError } from "../../core/errors.js";
import { idSchema } from "../../core/integration.js";
import { parseOrThrow } from "../../core/validation.js";
import { type DeliveryStatus, type Webhook, webhookInputSchema } from "../../core/webhook.js";
import type { Store } from "../../store/store.js";
import type { Delivery, StoredWebhook } from "../../store/webhook-store.js";

/** What the outside world sees of a webhook: never its secret, except once at creation. */
export interface WebhookView extends Webhook {
  createdAt: string;
  updatedAt: string;
  /** Only in the answer that created it: `whsec_` and 24 random bytes, base64. */
  secret?: string;
}

export type DeliveryView = Omit<
  Delivery,
  "nextAttemptAt" | "createdAt" | "lastAttemptAt" | "deliveredAt"
> & {
  nextAttemptAt: string | null;
  createdAt: string;
  lastAttemptAt: string | null;
  deliveredAt: string | null;
};

/** Webhook endpoints, for the service's routes, the CLI and the library. */
export class WebhookAdmin {
  readonly #store: Store;
  readonly #clock: Clock;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /** Creates (answering the new signing secret, once) or updates one; `created` says which. */
  async put(id: string, input: unknown): Promise<{ webhook: WebhookView; created: boolean }> {
    parseOrThrow(idSchema, id, "id");
    const body =
      input !== null && typeof input === "object" && !Array.isArray(input)
        ? { ...(input as Record<string, unknown>) }
        : input;
    if (body !== null && typeof body === "object" && "id" in body) {
      const given = (body as Record<string, unknown>).id;
      if (given !== id)
        throw new TokenwardenError(
          "invalid_config",
          `id: is ${String(given)} in the body but ${id} in the path`,
          { field: "id" },
        );
      delete (body as Record<string, unknown>).id;
    }
    const parsed = parseOrThrow(webhookInputSchema, body);
    const secret = `whsec_${randomBytes(24).toString("base64")}`;
    const { created } = await this.#store.webhooks.putWebhook(
      { id, ...parsed },
      this.#clock.now(),
      secret,
    );
    const stored = await this.get(id);
    return { webhook: created ? { ...stored, secret } : stored, created };
  }

  async get(id: string): Promise<WebhookView> {
    const stored = await this.#store.webhooks.getWebhook(id);
    if (stored === undefined) throw notFound(id);
    return webhookView(stored);
  }

  async list(): Promise<WebhookView[]> {
    return (await this.#store.webhooks.listWebhooks()).map(webhookView);
  }

  async remove(id: string): Promise<void> {
    if (!(await this.#store.webhooks.deleteWebhook(id))) throw notFound(id);
  }

  /** Newest first; `beforeId` pages backwards. */
  async deliveries(
    id: string,
    options: { limit?: number; beforeId?: number; status?: DeliveryStatus } = {},
  ): Promise<DeliveryView[]> {
    await this.get(id);
    const rows = await this.#store.webhooks.listDeliveries(id, {
      limit: Math.min(Math.max(options.limit ?? 50, 1), 500),
      ...(options.beforeId === undefined ? {} : { beforeId: options.beforeId }),
      ...(options.status === undefined ? {} : { status: options.status }),
    });
    return rows.map(deliveryView);
  }
}

function notFound(id: string): TokenwardenError {
  return new TokenwardenError("not_found", `webhook ${id} does not exist`);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : iso(ms);
}

function webhookView(stored: StoredWebhook): WebhookView {
  return {
    id: stored.id,
    url: stored.url,
    events: stored.events,
    enabled: stored.enabled,
    createdAt: iso(stored.createdAt),
    updatedAt: iso(stored.updatedAt),
  };
}

function deliveryView(delivery: Delivery): DeliveryView {
  return {
    ...delivery,
    nextAttemptAt: isoOrNull(delivery.nextAttemptAt),
    createdAt: iso(delivery.createdAt),
    lastAttemptAt: isoOrNull(delivery.lastAttemptAt),
    deliveredAt: isoOrNull(delivery.deliveredAt),
  };
}
