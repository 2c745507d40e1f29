/**
 * Many renewals written together (`TokenStateStore.writeRenewals`): when a storm of
 * expiries has hundreds of refreshes completing at once, each one's token write, event
 * and lease release cost a round trip and a commit apiece, and the database, not the
 * token endpoint, sets the pace. Here a batch is one statement on PostgreSQL (data-
 * modifying CTEs, with the change notices sent at its commit) and one transaction of
 * three on SQLite. Each write keeps its own condition: it lands only where the token
 * version and status are still the ones its attempt started from, and only then are
 * its event appended and its lease released.
 */
import { sql } from "kysely";
import { TokenwardenError } from "../core/errors.js";
import { storedEvent } from "../core/events.js";
import { stateColumns } from "./connection-rows.js";
import { CHANNEL } from "./pg-notifier.js";
import { atomically, type SqlContext } from "./sql-context.js";
import { eventColumns } from "./sql-events.js";
import type { RenewalWrite, RenewalWritten } from "./store.js";

/** The columns a renewal writes: every one, so a batch writes the same set for all. */
const WRITTEN = [
  ["status", "text"],
  ["sealed_token", "text"],
  ["expires_at", "int8"],
  ["next_refresh_at", "int8"],
  ["last_refresh_at", "int8"],
  ["failure_count", "int"],
  ["last_error", "text"],
  ["scope", "text"],
  ["refresh_token_expires_at", "int8"],
  ["refresh_token_warn_at", "int8"],
] as const;

/** Its event's columns (sql-events.ts `eventColumns`), but the connection's. */
const EVENT = [
  ["integration", "text"],
  ["at", "int8"],
  ["trigger", "text"],
  ["action", "text"],
  ["outcome", "text"],
  ["http_status", "int"],
  ["error_code", "text"],
  ["error_description", "text"],
  ["duration_ms", "int8"],
] as const;

/**
 * One write is a JSON array, these fields in this order, and a batch an array of them
 * (one parameter for either database): a record without field names is a third
 * smaller to build, send and parse than one with.
 */
const FIELDS = [
  ["n", "int"],
  ["id", "text"],
  /** The token version and status the write is conditional on. */
  ["v", "int8"],
  ["s", "text"],
  /** The lease claim released with it, and the change notice sent at its commit. */
  ["holder", "text"],
  ["topic", "text"],
  ...WRITTEN,
  ...EVENT,
] as const;

/** One write's fields, in `FIELDS` order. */
type WriteRecord = unknown[];

/** Where `name` is in a record. */
const at = (name: (typeof FIELDS)[number][0]) => FIELDS.findIndex(([field]) => field === name);
const N = at("n");
const ID = at("id");

export async function writeRenewals(
  ctx: SqlContext,
  writes: RenewalWrite[],
  now: number,
): Promise<Array<RenewalWritten | undefined>> {
  const records = writes.map((write, n) => record(ctx, write, n));
  const done =
    ctx.dialect === "postgres"
      ? await postgres(ctx, JSON.stringify(records), now)
      : await sqlite(ctx, records, now);
  return writes.map((write, n) => {
    const row = done.get(n);
    if (row === undefined) return undefined;
    return { tokenVersion: row.tokenVersion, event: storedEvent(write.event, row.eventId) };
  });
}

function record(ctx: SqlContext, write: RenewalWrite, n: number): WriteRecord {
  const columns: { [column: string]: unknown } = stateColumns(write.id, write.patch, ctx.sealer);
  if (columns.sealed_token == null || WRITTEN.some(([column]) => !(column in columns)))
    throw new TokenwardenError("internal_error", "a batched renewal write needs a whole patch");
  const event: { [column: string]: unknown } = eventColumns(write.event);
  const values: WriteRecord = [
    n,
    write.id,
    write.expectedVersion,
    write.expectedStatus,
    write.leaseHolder ?? null,
    write.topic,
  ];
  for (const [column] of WRITTEN) values.push(columns[column]);
  for (const [column] of EVENT) values.push(event[column]);
  return values;
}

type Done = Map<number, { tokenVersion: number; eventId: number }>;

/** `i`: the batch as rows, each field cast to its column's type (names are constants). */
const POSTGRES_INPUT = sql.raw(
  `select ${FIELDS.map(([name, type], k) => `(e->>${k})::${type} as "${name}"`).join(", ")} from jsonb_array_elements`,
);

async function postgres(ctx: SqlContext, json: string, now: number): Promise<Done> {
  const result = await sql<{ n: number; token_version: number; event_id: number }>`
    with i as (
      ${POSTGRES_INPUT}(${json}::jsonb) as e
    ), written as (
      update tw_connections c set
        status = i.status, sealed_token = i.sealed_token, expires_at = i.expires_at,
        next_refresh_at = i.next_refresh_at, last_refresh_at = i.last_refresh_at,
        failure_count = i.failure_count, last_error = i.last_error, scope = i.scope,
        refresh_token_expires_at = i.refresh_token_expires_at,
        refresh_token_warn_at = i.refresh_token_warn_at,
        token_version = c.token_version + 1, updated_at = ${now}
      from i where c.id = i.id and c.token_version = i.v and c.status = i.s
      returning c.id, c.token_version
    ), appended as (
      insert into tw_events (connection_id, integration, "at", "trigger", "action", outcome,
        http_status, error_code, error_description, duration_ms)
      select i.id, i.integration, i."at", i."trigger", i."action", i.outcome,
        i.http_status, i.error_code, i.error_description, i.duration_ms
      from i join written w on w.id = i.id
      returning id, connection_id
    ), released as (
      delete from tw_leases l using i join written w on w.id = i.id
      where l.connection_id = i.id and l.holder = i.holder
    )
    select i.n, w.token_version, a.id as event_id, pg_notify(${CHANNEL}, i.topic) as told
    from i join written w on w.id = i.id join appended a on a.connection_id = i.id`.execute(ctx.db);
  return new Map(
    result.rows.map((r) => [
      Number(r.n),
      { tokenVersion: Number(r.token_version), eventId: Number(r.event_id) },
    ]),
  );
}

/** SQLite has no change feed; the three statements share one transaction. */
async function sqlite(ctx: SqlContext, records: WriteRecord[], now: number): Promise<Done> {
  const field = (name: (typeof FIELDS)[number][0]) =>
    sql.raw(`json_extract(value, '$[${at(name)}]')`);
  return atomically(ctx, async (db) => {
    const written = await sql<{ id: string; token_version: number }>`
      with i as (
        select ${field("id")} as id, ${field("v")} as v, ${field("s")} as s,
          ${sql.join(
            WRITTEN.map(([c]) => sql`${field(c)} as ${sql.ref(c)}`),
            sql`, `,
          )}
        from json_each(${JSON.stringify(records)})
      )
      update tw_connections set
        ${sql.join(
          WRITTEN.map(([c]) => sql`${sql.ref(c)} = i.${sql.ref(c)}`),
          sql`, `,
        )},
        token_version = tw_connections.token_version + 1, updated_at = ${now}
      from i
      where tw_connections.id = i.id and tw_connections.token_version = i.v
        and tw_connections.status = i.s
      returning tw_connections.id as id, tw_connections.token_version as token_version`.execute(db);
    if (written.rows.length === 0) return new Map();
    const versions = new Map(written.rows.map((r) => [r.id, Number(r.token_version)]));
    const landed = records.filter((r) => versions.has(r[ID] as string));
    const appended = await sql<{ id: number; connection_id: string }>`
      insert into tw_events (connection_id, ${sql.join(EVENT.map(([c]) => sql.ref(c)))})
      select ${field("id")}, ${sql.join(EVENT.map(([c]) => field(c)))}
      from json_each(${JSON.stringify(landed)})
      returning id, connection_id`.execute(db);
    await sql`
      delete from tw_leases where (connection_id, holder) in (
        select ${field("id")}, ${field("holder")} from json_each(${JSON.stringify(landed)}))`.execute(
      db,
    );
    const eventIds = new Map(appended.rows.map((r) => [r.connection_id, Number(r.id)]));
    const done: Done = new Map();
    for (const r of landed) {
      const id = r[ID] as string;
      const eventId = eventIds.get(id);
      const tokenVersion = versions.get(id);
      if (eventId !== undefined && tokenVersion !== undefined)
        done.set(r[N] as number, { tokenVersion, eventId });
    }
    return done;
  });
}
