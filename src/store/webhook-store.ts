/**
 * Webhook endpoints and the outbox of their deliveries (0006_lifecycle). Bound to the
 * Kysely instance it is given: the store hands out one bound to its transaction, so an
 * event lands with the state change that raised it, or not at all.
 */
import { randomBytes } from "node:crypto";
import { type Kysely, sql } from "kysely";
import type { ConnectionStatus, ErrorSummary } from "../core/connection.js";
import type { LifecycleEventBody } from "../core/lifecycle.js";
import type { DeliveryStatus, Webhook } from "../core/webhook.js";
import type { Sealer } from "./crypto.js";
import { recordKeyId } from "./master-key.js";
import type { Dialect } from "./migrations.js";
import type { Database } from "./schema.js";
import {
  type AttemptOutcome,
  type ClaimedDelivery,
  type Delivery,
  deliveryFrom,
  parseEvents,
  type StatusSnapshot,
  type StoredWebhook,
  webhookFrom,
  webhookSecretContext,
} from "./webhook-rows.js";

export {
  type AttemptOutcome,
  type ClaimedDelivery,
  type Delivery,
  type StatusSnapshot,
  type StoredWebhook,
  webhookSecretContext,
} from "./webhook-rows.js";

export class WebhookStore {
  readonly #db: Kysely<Database>;
  readonly #dialect: Dialect;
  readonly #sealer: Sealer;

  constructor(db: Kysely<Database>, dialect: Dialect, sealer: Sealer) {
    this.#db = db;
    this.#dialect = dialect;
    this.#sealer = sealer;
  }

  // Endpoints ----------------------------------------------------------------------

  /** Creates (with `secret`) or updates one; the secret of an existing one is kept. */
  async putWebhook(
    webhook: Webhook,
    now: number,
    secret: string | undefined,
  ): Promise<{ created: boolean }> {
    const columns = {
      url: webhook.url,
      events: JSON.stringify(webhook.events),
      enabled: webhook.enabled ? 1 : 0,
      updated_at: now,
    };
    const updated = await this.#db
      .updateTable("tw_webhooks")
      .set(columns)
      .where("id", "=", webhook.id)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) > 0) return { created: false };
    if (secret === undefined) throw new Error("a new webhook needs its secret");
    await recordKeyId(this.#db, this.#sealer.currentKeyId);
    await this.#db
      .insertInto("tw_webhooks")
      .values({
        id: webhook.id,
        ...columns,
        sealed_secret: this.#sealer.seal(secret, webhookSecretContext(webhook.id)),
        created_at: now,
      })
      .execute();
    return { created: true };
  }

  async getWebhook(id: string): Promise<StoredWebhook | undefined> {
    const row = await this.#db
      .selectFrom("tw_webhooks")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    return row === undefined ? undefined : webhookFrom(row);
  }

  async listWebhooks(): Promise<StoredWebhook[]> {
    const rows = await this.#db.selectFrom("tw_webhooks").selectAll().orderBy("id").execute();
    return rows.map(webhookFrom);
  }

  /** Removes it and its deliveries, pending or not. */
  async deleteWebhook(id: string): Promise<boolean> {
    await this.#db.deleteFrom("tw_webhook_deliveries").where("webhook_id", "=", id).execute();
    const result = await this.#db.deleteFrom("tw_webhooks").where("id", "=", id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  // The outbox ---------------------------------------------------------------------

  /**
   * Writes one delivery per enabled endpoint that takes this event type, all under one
   * message id. Runs in the caller's transaction.
   */
  async enqueue(body: LifecycleEventBody, now: number): Promise<number> {
    const hooks = (
      await this.#db
        .selectFrom("tw_webhooks")
        .select(["id", "events"])
        .where("enabled", "=", 1)
        .execute()
    ).filter((hook) => parseEvents(hook.events).includes(body.type));
    if (hooks.length === 0) return 0;
    const messageId = `msg_${randomBytes(16).toString("base64url")}`;
    const payload = JSON.stringify(body);
    await this.#db
      .insertInto("tw_webhook_deliveries")
      .values(
        hooks.map((hook) => ({
          message_id: messageId,
          webhook_id: hook.id,
          type: body.type,
          connection_id: body.data.connectionId,
          payload,
          status: "pending",
          attempts: 0,
          next_attempt_at: now,
          created_at: now,
        })),
      )
      .execute();
    return hooks.length;
  }

  /**
   * Checks out up to `limit` due deliveries by moving them to `until` under `holder`:
   * other processes no longer see them as due (PostgreSQL: SKIP LOCKED, so concurrent
   * dispatchers take disjoint rows), and if this process dies they come due again.
   */
  async claimDeliveries(
    now: number,
    limit: number,
    until: number,
    holder: string,
  ): Promise<ClaimedDelivery[]> {
    let ids: number[];
    if (this.#dialect === "postgres") {
      const result = await sql<{ id: number }>`
        with due as (
          select id from tw_webhook_deliveries
          where next_attempt_at <= ${now}
          order by next_attempt_at
          limit ${limit}
          for update skip locked
        )
        update tw_webhook_deliveries set next_attempt_at = ${until}, lease_holder = ${holder}
        from due where tw_webhook_deliveries.id = due.id
        returning tw_webhook_deliveries.id as id`.execute(this.#db);
      ids = result.rows.map((r) => Number(r.id));
    } else {
      // As the scheduler does on SQLite: read, then take those still due.
      const due = await this.#db
        .selectFrom("tw_webhook_deliveries")
        .select("id")
        .where("next_attempt_at", "<=", now)
        .orderBy("next_attempt_at")
        .limit(limit)
        .execute();
      if (due.length === 0) return [];
      const taken = await this.#db
        .updateTable("tw_webhook_deliveries")
        .set({ next_attempt_at: until, lease_holder: holder })
        .where(
          "id",
          "in",
          due.map((r) => Number(r.id)),
        )
        .where("next_attempt_at", "<=", now)
        .returning("id")
        .execute();
      ids = taken.map((r) => Number(r.id));
    }
    if (ids.length === 0) return [];
    const rows = await this.#db
      .selectFrom("tw_webhook_deliveries as d")
      .innerJoin("tw_webhooks as w", "w.id", "d.webhook_id")
      .selectAll("d")
      .select(["w.url as url", "w.sealed_secret as sealed_secret", "w.enabled as enabled"])
      .where("d.id", "in", ids)
      .orderBy("d.id")
      .execute();
    return rows.map((row) => ({
      ...deliveryFrom(row),
      payload: row.payload,
      url: row.url,
      secret: this.#sealer.open(row.sealed_secret, webhookSecretContext(row.webhook_id)),
      enabled: Number(row.enabled) === 1,
    }));
  }

  /**
   * Records an attempt, if this holder still has the delivery: one whose claim lapsed
   * and that another process took over is left to it.
   */
  async completeAttempt(
    id: number,
    holder: string,
    outcome: AttemptOutcome,
    now: number,
  ): Promise<boolean> {
    const status: DeliveryStatus = outcome.ok
      ? "succeeded"
      : outcome.nextAttemptAt === null
        ? "failed"
        : "pending";
    const result = await this.#db
      .updateTable("tw_webhook_deliveries")
      .set({
        status,
        attempts: sql<number>`attempts + 1`,
        next_attempt_at: status === "pending" ? outcome.nextAttemptAt : null,
        lease_holder: null,
        last_attempt_at: now,
        last_http_status: outcome.httpStatus,
        last_error: outcome.error,
        ...(outcome.ok ? { delivered_at: now } : {}),
      })
      .where("id", "=", id)
      .where("lease_holder", "=", holder)
      .where("status", "=", "pending")
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** A webhook's deliveries, newest first; `beforeId` pages backwards. */
  async listDeliveries(
    webhookId: string,
    options: { limit: number; beforeId?: number; status?: DeliveryStatus },
  ): Promise<Delivery[]> {
    let query = this.#db
      .selectFrom("tw_webhook_deliveries")
      .selectAll()
      .where("webhook_id", "=", webhookId)
      .orderBy("id", "desc")
      .limit(options.limit);
    if (options.beforeId !== undefined) query = query.where("id", "<", options.beforeId);
    if (options.status !== undefined) query = query.where("status", "=", options.status);
    return (await query.execute()).map(deliveryFrom);
  }

  // What lifecycle events read ----------------------------------------------------

  /**
   * A connection's status, locked until the transaction ends (PostgreSQL; SQLite's
   * transactions hold the write lock already), so that the status it reports is the
   * one the next write replaces.
   */
  async lockStatus(connectionId: string): Promise<StatusSnapshot | undefined> {
    let query = this.#db
      .selectFrom("tw_connections")
      .select(["status", "integration", "environment", "last_error"])
      .where("id", "=", connectionId);
    if (this.#dialect === "postgres") query = query.forUpdate();
    const row = await query.executeTakeFirst();
    if (row === undefined) return undefined;
    return {
      status: row.status as ConnectionStatus,
      integration: row.integration,
      environment: row.environment,
      lastError: row.last_error === null ? null : (JSON.parse(row.last_error) as ErrorSummary),
    };
  }

  /** The cheap read before `takeRefreshTokenWarnings`'s transaction: is anything due? */
  async refreshTokenWarningsDue(now: number): Promise<boolean> {
    const row = await this.#db
      .selectFrom("tw_connections")
      .select("id")
      .where("refresh_token_warn_at", "<=", now)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  /**
   * Takes the connections whose refresh token's end is due to be announced, at most
   * `limit`, and clears their mark; returns those whose end was not announced before.
   * Run inside a transaction with the enqueue of their events: the cluster announces
   * each end once.
   */
  async takeRefreshTokenWarnings(
    now: number,
    limit: number,
  ): Promise<
    Array<{
      connectionId: string;
      integration: string;
      environment: string;
      status: ConnectionStatus;
      refreshTokenExpiresAt: number;
    }>
  > {
    let query = this.#db
      .selectFrom("tw_connections")
      .select([
        "id",
        "integration",
        "environment",
        "status",
        "refresh_token_expires_at",
        "refresh_token_warned_for",
      ])
      .where("refresh_token_warn_at", "<=", now)
      .orderBy("refresh_token_warn_at")
      .limit(limit);
    if (this.#dialect === "postgres") query = query.forUpdate().skipLocked();
    const rows = await query.execute();
    const due = [];
    for (const row of rows) {
      await this.#db
        .updateTable("tw_connections")
        .set({
          refresh_token_warn_at: null,
          refresh_token_warned_for: row.refresh_token_expires_at,
        })
        .where("id", "=", row.id)
        .execute();
      const end =
        row.refresh_token_expires_at === null ? null : Number(row.refresh_token_expires_at);
      const announced =
        row.refresh_token_warned_for === null ? null : Number(row.refresh_token_warned_for);
      if (end === null || end === announced) continue;
      due.push({
        connectionId: row.id,
        integration: row.integration,
        environment: row.environment,
        status: row.status as ConnectionStatus,
        refreshTokenExpiresAt: end,
      });
    }
    return due;
  }
}
