/**
 * Device authorizations being polled (the `DeviceAuthorizationStore` role): one row
 * per connection, the device code sealed, with the interval and the next poll's time,
 * so that every process on the database polls one flow at the server's pace.
 */
import type { DeviceAuthorizationsTable } from "./schema.js";
import { sealingContext } from "./sealed-rows.js";
import type { SqlContext } from "./sql-context.js";
import type { DeviceAuthorizationStore, PendingDeviceAuthorization } from "./store.js";

export class SqlDeviceAuthorizations implements DeviceAuthorizationStore {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async putDeviceAuthorization(flow: PendingDeviceAuthorization): Promise<void> {
    await this.#ctx.recordKey();
    const values = {
      flow_id: flow.flowId,
      sealed_device_code: this.#ctx.sealer.seal(
        flow.deviceCode,
        sealingContext.deviceCode(flow.connectionId),
      ),
      expires_at: flow.expiresAt,
      interval_ms: flow.intervalMs,
      next_poll_at: flow.nextPollAt,
    };
    await this.#ctx.db
      .insertInto("tw_device_authorizations")
      .values({ connection_id: flow.connectionId, ...values })
      .onConflict((oc) => oc.column("connection_id").doUpdateSet(values))
      .execute();
  }

  async getDeviceAuthorization(
    connectionId: string,
  ): Promise<PendingDeviceAuthorization | undefined> {
    const row = await this.#ctx.db
      .selectFrom("tw_device_authorizations")
      .selectAll()
      .where("connection_id", "=", connectionId)
      .executeTakeFirst();
    return row === undefined ? undefined : this.#fromRow(row);
  }

  async listDeviceAuthorizations(): Promise<PendingDeviceAuthorization[]> {
    const rows = await this.#ctx.db
      .selectFrom("tw_device_authorizations")
      .selectAll()
      .orderBy("connection_id")
      .execute();
    return rows.map((row) => this.#fromRow(row));
  }

  async rescheduleDeviceAuthorization(
    connectionId: string,
    flowId: string,
    next: { intervalMs: number; nextPollAt: number },
  ): Promise<boolean> {
    const result = await this.#ctx.db
      .updateTable("tw_device_authorizations")
      .set({ interval_ms: next.intervalMs, next_poll_at: next.nextPollAt })
      .where("connection_id", "=", connectionId)
      .where("flow_id", "=", flowId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async deleteDeviceAuthorization(connectionId: string, flowId: string): Promise<boolean> {
    const result = await this.#ctx.db
      .deleteFrom("tw_device_authorizations")
      .where("connection_id", "=", connectionId)
      .where("flow_id", "=", flowId)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  #fromRow(row: DeviceAuthorizationsTable): PendingDeviceAuthorization {
    return {
      connectionId: row.connection_id,
      flowId: row.flow_id,
      deviceCode: this.#ctx.sealer.open(
        row.sealed_device_code,
        sealingContext.deviceCode(row.connection_id),
      ),
      expiresAt: Number(row.expires_at),
      intervalMs: Number(row.interval_ms),
      nextPollAt: Number(row.next_poll_at),
    };
  }
}
