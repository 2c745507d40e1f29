/**
 * The event record (the `EventStore` role): appended by every process, read per
 * connection newest first, or cluster-wide by id for the live feed.
 */
import type { Selectable } from "kysely";
import type {
  EventAction,
  EventOutcome,
  EventTrigger,
  NewTokenEvent,
  TokenEvent,
} from "../core/events.js";
import type { EventsTable } from "./schema.js";
import type { SqlContext } from "./sql-context.js";
import type { EventStore } from "./store.js";

export class SqlEvents implements EventStore {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async appendEvent(event: NewTokenEvent): Promise<TokenEvent> {
    const row = await this.#ctx.db
      .insertInto("tw_events")
      .values({ connection_id: event.connectionId, ...eventColumns(event) })
      .returningAll()
      .executeTakeFirstOrThrow();
    return eventFrom(row);
  }

  async listEvents(
    connectionId: string,
    options: { limit: number; beforeId?: number },
  ): Promise<TokenEvent[]> {
    let query = this.#ctx.db
      .selectFrom("tw_events")
      .selectAll()
      .where("connection_id", "=", connectionId)
      .orderBy("id", "desc")
      .limit(options.limit);
    if (options.beforeId !== undefined) query = query.where("id", "<", options.beforeId);
    return (await query.execute()).map(eventFrom);
  }

  async listEventsAfter(afterId: number, limit: number): Promise<TokenEvent[]> {
    const rows = await this.#ctx.db
      .selectFrom("tw_events")
      .selectAll()
      .where("id", ">", afterId)
      .orderBy("id", "asc")
      .limit(limit)
      .execute();
    return rows.map(eventFrom);
  }

  async lastEventId(): Promise<number> {
    const row = await this.#ctx.db
      .selectFrom("tw_events")
      .select((eb) => eb.fn.max("id").as("id"))
      .executeTakeFirst();
    return row?.id === null || row?.id === undefined ? 0 : Number(row.id);
  }
}

function eventFrom(row: Selectable<EventsTable>): TokenEvent {
  return {
    id: Number(row.id),
    at: new Date(Number(row.at)).toISOString(),
    connectionId: row.connection_id,
    integration: row.integration,
    trigger: row.trigger as EventTrigger,
    action: row.action as EventAction,
    outcome: row.outcome as EventOutcome,
    httpStatus: row.http_status,
    errorCode: row.error_code,
    errorDescription: row.error_description,
    durationMs: Number(row.duration_ms),
  };
}

/** An event's columns but its connection's (a batched renewal writes that one itself). */
export function eventColumns(event: NewTokenEvent) {
  return {
    integration: event.integration,
    at: event.at,
    trigger: event.trigger,
    action: event.action,
    outcome: event.outcome,
    http_status: event.httpStatus,
    error_code: event.errorCode,
    error_description: event.errorDescription,
    duration_ms: Math.round(event.durationMs),
  };
}
