/**
 * `GET /v1/events/stream`: every connection's events, cluster-wide, as server-sent
 * events with ids, resumable from `Last-Event-ID` (or `?after=<id>`).
 *
 * Each process of a cluster writes its events to the events table, so the stream reads
 * that table rather than this process's memory. One feed per server polls it by primary
 * key (`id > cursor`, a range scan) every `pollMs` while anyone listens, and at once
 * when this process records an event; every client is served from that one query, so
 * the database work does not grow with the number of clients. Each client gets at most
 * `batch` events per round and is dropped (to reconnect and resume) if it stops
 * reading, so a slow client cannot make the server buffer without bound.
 */
import type { ServerResponse } from "node:http";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { invalidConfig } from "../core/errors.js";
import type { TokenEvent } from "../core/events.js";
import { defineRoute } from "./route.js";

export interface EventStreamOptions {
  /** How often the table is read while clients listen. */
  pollMs?: number;
  /** Events read per round (and so sent to one client per round). */
  batch?: number;
  /** How long a gap in the ids is waited on before it is taken as final (see `settledPrefix`). */
  gapGraceMs?: number;
  /** Bytes a client may leave unread before it is dropped. */
  maxBufferedBytes?: number;
  heartbeatMs?: number;
}

interface Client {
  /** The id of the last event this client has. */
  cursor: number;
  res: ServerResponse;
}

const streamQuery = z.strictObject({
  after: z.coerce.number().int().min(0).optional(),
});

/** A cursor from `Last-Event-ID` (what a reconnecting EventSource sends) or `?after`. */
export function cursorFrom(lastEventId: string | string[] | undefined, after: number | undefined) {
  if (lastEventId === undefined) return after;
  const value = Array.isArray(lastEventId) ? lastEventId[0] : lastEventId;
  if (value === undefined || !/^\d{1,15}$/.test(value.trim())) {
    // The same code as a bad query parameter (route.ts), naming the header as the field.
    throw invalidConfig("Last-Event-ID", "must be an event id");
  }
  return Number(value.trim());
}

/**
 * The part of `batch` (ids ascending, all above `after`) that can be sent now. On
 * PostgreSQL an id is taken when an insert starts but seen when it commits, so id 11 can
 * be visible while id 10 is still on its way: a reader that moved past 10 would never
 * see it. A gap is therefore waited on for `graceMs` from when it was first seen (`gaps`
 * remembers that), after which it is taken as an id that will never come (a rolled-back
 * insert). SQLite commits in id order, so its gaps pass after the grace too.
 */
export function settledPrefix(
  batch: readonly TokenEvent[],
  after: number,
  gaps: Map<number, number>,
  now: number,
  graceMs: number,
): TokenEvent[] {
  let expected = after + 1;
  for (const [index, event] of batch.entries()) {
    if (event.id > expected) {
      let since = gaps.get(expected);
      if (since === undefined) {
        since = now;
        gaps.set(expected, now);
      }
      if (now - since < graceMs) return batch.slice(0, index);
    }
    expected = event.id + 1;
  }
  return [...batch];
}

/** One reader of the events table, shared by every client of this server. */
export class EventFeed {
  readonly #tw: Tokenwarden;
  readonly #pollMs: number;
  readonly #batch: number;
  readonly #gapGraceMs: number;
  readonly #maxBufferedBytes: number;
  readonly #heartbeatMs: number;
  readonly #clients = new Set<Client>();
  readonly #gaps = new Map<number, number>();
  readonly #wake = () => this.wake();
  #timer: NodeJS.Timeout | undefined;
  #lastHeartbeat = 0;
  #running = false;
  #again = false;

  constructor(tw: Tokenwarden, options: EventStreamOptions = {}) {
    this.#tw = tw;
    this.#pollMs = options.pollMs ?? 1000;
    this.#batch = options.batch ?? 100;
    this.#gapGraceMs = options.gapGraceMs ?? 2000;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
  }

  add(res: ServerResponse, cursor: number): Client {
    const client = { cursor, res };
    this.#clients.add(client);
    if (this.#timer === undefined) {
      this.#lastHeartbeat = Date.now();
      this.#timer = setInterval(() => this.#onTimer(), this.#pollMs);
      this.#timer.unref();
      // This process's own events wake the feed at once; other processes' wait for the poll.
      this.#tw.on("event", this.#wake);
    }
    this.wake();
    return client;
  }

  remove(client: Client): void {
    if (!this.#clients.delete(client)) return;
    if (this.#clients.size === 0) this.#stop();
  }

  /** Ends every stream (the service is closing): a graceful close would wait for them. */
  closeAll(): void {
    for (const client of this.#clients) client.res.end();
    this.#clients.clear();
    this.#stop();
  }

  /** Reads the table now; a call during a read asks for another read after it. */
  wake(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#drain().finally(() => {
      this.#running = false;
    });
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#tw.off("event", this.#wake);
    this.#gaps.clear();
  }

  #onTimer(): void {
    if (Date.now() - this.#lastHeartbeat >= this.#heartbeatMs) {
      this.#lastHeartbeat = Date.now();
      for (const client of this.#clients) this.#write(client, ": keep-alive\n\n");
    }
    this.wake();
  }

  async #drain(): Promise<void> {
    do {
      this.#again = false;
      if (this.#clients.size === 0) return;
      const from = Math.min(...[...this.#clients].map((c) => c.cursor));
      let batch: TokenEvent[];
      try {
        batch = await this.#tw.eventsAfter(from, this.#batch);
      } catch {
        return; // The database is away: the next poll tries again, clients stay connected.
      }
      const settled = settledPrefix(batch, from, this.#gaps, Date.now(), this.#gapGraceMs);
      const last = settled.at(-1)?.id;
      if (last === undefined) continue;
      for (const client of this.#clients) {
        const fresh = settled.filter((event) => event.id > client.cursor);
        if (fresh.length === 0) continue;
        this.#write(client, fresh.map(frame).join(""));
        client.cursor = Math.max(client.cursor, last);
      }
      for (const id of this.#gaps.keys()) if (id <= last) this.#gaps.delete(id);
      // A full batch means a client is behind: read on without waiting for the poll.
      if (batch.length === this.#batch && settled.length === batch.length) this.#again = true;
    } while (this.#again);
  }

  #write(client: Client, text: string): void {
    if (client.res.writableLength > this.#maxBufferedBytes) {
      // It stopped reading: drop it; it reconnects with Last-Event-ID and misses nothing.
      client.res.end();
      this.remove(client);
      return;
    }
    client.res.write(text);
  }
}

/** One server-sent event; JSON has no raw newline, so `data` is one line. */
function frame(event: TokenEvent): string {
  return `id: ${event.id}\nevent: token\ndata: ${JSON.stringify(event)}\n\n`;
}

export function registerEventStream(
  app: FastifyInstance,
  tw: Tokenwarden,
  options: EventStreamOptions = {},
): void {
  const feed = new EventFeed(tw, options);
  app.addHook("preClose", async () => feed.closeAll());
  defineRoute(app, {
    method: "GET",
    url: "/v1/events/stream",
    operationId: "streamEvents",
    summary:
      "Every connection's events across the cluster as they happen (text/event-stream, with ids); resume with Last-Event-ID or ?after=<id>, or start from now",
    tags: ["admin"],
    query: streamQuery,
    responses: {
      200: { description: "Events as they happen", media: "text/event-stream" },
      400: { description: "Last-Event-ID or after is not an event id", schema: "ErrorBody" },
    },
    handler: async ({ query }, request, reply) => {
      const cursor =
        cursorFrom(request.headers["last-event-id"], query.after) ?? (await tw.lastEventId());
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        connection: "keep-alive",
        "x-accel-buffering": "no",
        // A hijacked reply skips the onSend hook that sets this everywhere else.
        "x-content-type-options": "nosniff",
      });
      // `retry` tells an EventSource how long to wait before it reconnects and resumes.
      res.write("retry: 2000\n: connected\n\n");
      const client = feed.add(res, cursor);
      // The response's close, not the request's: it fires when the client goes away.
      res.on("close", () => feed.remove(client));
    },
  });
}
