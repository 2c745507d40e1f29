import { createParser, type EventSourceMessage } from "eventsource-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tokenwarden } from "../../src/broker/tokenwarden.js";
import type { TokenEvent } from "../../src/core/events.js";
import { settledPrefix } from "../../src/service/event-stream.js";
import type { RunningService } from "../../src/service/serve.js";
import { openBroker } from "../fixtures/broker.js";
import { describeEachDriver } from "../fixtures/databases.js";
import { startTestService, type TestService } from "../fixtures/service.js";

/**
 * `GET /v1/events/stream` reads the events table, so it carries every instance's
 * events (a cluster's), each with its id, and resumes after `Last-Event-ID`.
 */
const API_KEY = "stream-api-key-0123456789";

interface OpenStream {
  status: number;
  messages: EventSourceMessage[];
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  body: unknown;
  close(): void;
}

async function openStream(
  service: RunningService,
  query = "",
  headers: Record<string, string> = {},
): Promise<OpenStream> {
  const controller = new AbortController();
  const res = await fetch(`${service.url}/v1/events/stream${query}`, {
    headers: { authorization: `Bearer ${API_KEY}`, ...headers },
    signal: controller.signal,
  });
  const messages: EventSourceMessage[] = [];
  if (!res.ok || res.body === null) {
    return {
      status: res.status,
      messages,
      ended: Promise.resolve(),
      body: await res.json(),
      close: () => undefined,
    };
  }
  const parser = createParser({ onEvent: (message) => messages.push(message) });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const ended = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        parser.feed(value);
      }
    } catch {
      // Aborted by close().
    }
  })();
  return { status: res.status, messages, ended, body: undefined, close: () => controller.abort() };
}

const idsOf = (stream: OpenStream) => stream.messages.map((m) => Number(m.id));

await describeEachDriver("the event stream on $name", (driver) => {
  let service: TestService;
  /** Another instance on the same database: another process of the cluster. */
  let other: Tokenwarden;
  const open: OpenStream[] = [];

  /** Records one event (a revoke needs no server when there is no token to revoke). */
  async function recordEvent(tw: Tokenwarden): Promise<TokenEvent> {
    await tw.revoke("c1");
    const [latest] = await tw.listEvents("c1", { limit: 1 });
    return latest as TokenEvent;
  }

  async function stream(query = "", headers: Record<string, string> = {}) {
    const opened = await openStream(service, query, headers);
    open.push(opened);
    return opened;
  }

  beforeAll(async () => {
    service = await startTestService({ apiKey: API_KEY, database: driver.create });
    other = await openBroker(service.database);
    await service.tw.putIntegration({
      key: "cc",
      grantType: "client_credentials",
      tokenUrl: "http://127.0.0.1:9/token",
      clientId: "client",
    });
    await service.tw.putConnection({ id: "c1", integration: "cc" });
  });

  afterAll(async () => {
    for (const opened of open) opened.close();
    await other?.close();
    await service?.close();
  });

  it("sends events as they are recorded, by this instance and by another on the same database", async () => {
    const live = await stream();
    expect(live.status).toBe(200);
    const mine = await recordEvent(service.tw);
    const theirs = await recordEvent(other);
    await expect.poll(() => idsOf(live), { timeout: 10_000 }).toEqual([mine.id, theirs.id]);
    for (const message of live.messages) expect(message.event).toBe("token");
    const sent = JSON.parse(live.messages[1]?.data ?? "{}") as TokenEvent;
    expect(sent).toEqual(theirs);
  });

  it("resumes after Last-Event-ID, in order, then goes on live", async () => {
    const first = await recordEvent(service.tw);
    const second = await recordEvent(other);
    const third = await recordEvent(service.tw);
    const resumed = await stream("", { "last-event-id": String(first.id) });
    await expect.poll(() => idsOf(resumed), { timeout: 10_000 }).toEqual([second.id, third.id]);
    const fourth = await recordEvent(other);
    await expect
      .poll(() => idsOf(resumed), { timeout: 10_000 })
      .toEqual([second.id, third.id, fourth.id]);
  });

  it("resumes after ?after=<id> too; Last-Event-ID wins when both are sent", async () => {
    const first = await recordEvent(service.tw);
    const second = await recordEvent(service.tw);
    const byQuery = await stream(`?after=${first.id}`);
    await expect.poll(() => idsOf(byQuery), { timeout: 10_000 }).toEqual([second.id]);
    const both = await stream(`?after=${first.id - 5}`, { "last-event-id": String(first.id) });
    await expect.poll(() => idsOf(both), { timeout: 10_000 }).toEqual([second.id]);
  });

  it("refuses a cursor that is not an event id, and a request without the API key", async () => {
    for (const [query, headers, field] of [
      ["", { "last-event-id": "12abc" }, "Last-Event-ID"],
      ["", { "last-event-id": "-1" }, "Last-Event-ID"],
      ["?after=-1", {}, "after"],
      ["?after=x", {}, "after"],
    ] as const) {
      const refused = await stream(query, headers);
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ error: { code: "invalid_config", field } });
    }
    const res = await fetch(`${service.url}/v1/events/stream`);
    expect(res.status).toBe(401);
  });

  it("ends open streams when the service closes", async () => {
    const live = await stream();
    await service.close();
    await live.ended;
    expect(live.status).toBe(200);
  });
});

describe("settledPrefix", () => {
  const event = (id: number) => ({ id }) as TokenEvent;

  it("holds a gap in the ids for the grace period, then passes it", () => {
    const gaps = new Map<number, number>();
    const batch = [event(11), event(12), event(14)];
    // 11 and 12 follow 10; 13 may still be committing: hold 14 back.
    expect(settledPrefix(batch, 10, gaps, 1000, 2000).map((e) => e.id)).toEqual([11, 12]);
    expect(settledPrefix(batch, 10, gaps, 2999, 2000).map((e) => e.id)).toEqual([11, 12]);
    // Two seconds after the gap was first seen, 13 is taken as never coming.
    expect(settledPrefix(batch, 10, gaps, 3000, 2000).map((e) => e.id)).toEqual([11, 12, 14]);
  });

  it("holds a gap right after the cursor as well", () => {
    const gaps = new Map<number, number>();
    expect(settledPrefix([event(7)], 5, gaps, 0, 2000)).toEqual([]);
    expect(settledPrefix([event(7)], 5, gaps, 2000, 2000).map((e) => e.id)).toEqual([7]);
  });
});
