import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostLimit } from "../../src/broker/host-limit.js";
import { ManualClock } from "../../src/index.js";
import { openBroker } from "../fixtures/broker.js";
import { sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";

/**
 * The scheduler's pace follows the token endpoint: renewals in flight grow to what its
 * latency needs (not a fixed pool of 8), bounded per token endpoint host so that one
 * provider is not flooded when many tokens come due together.
 */
let server: QuirkServer;
let db: TestDatabase;
let inFlight = 0;
let peak = 0;

beforeAll(async () => {
  server = await startQuirkServer();
  server.on("/slow-token", async (_req, res) => {
    inFlight += 1;
    peak = Math.max(peak, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 400));
    inFlight -= 1;
    json(res, 200, { access_token: `t-${Math.random()}`, expires_in: 3600 });
  });
  db = await sqliteDatabase();
});
afterAll(async () => {
  await server.close();
  await db.drop();
});

async function storm(
  connections: number,
  tokenEndpointConcurrency?: number,
  schedulerConcurrency?: number,
) {
  peak = 0;
  const clock = new ManualClock(Date.now());
  const key = `storm-${connections}-${tokenEndpointConcurrency ?? "default"}-${schedulerConcurrency ?? "default"}`;
  const setup = await openBroker(db, { clock });
  await setup.putIntegration({
    key,
    grantType: "client_credentials",
    tokenUrl: server.url("/slow-token"),
    clientId: "app",
  });
  for (let i = 0; i < connections; i++)
    await setup.putConnection({ id: `${key}-${i}`, integration: key });
  await setup.close();
  // Every connection is due now (new ones are due at once): a storm.
  const tw = await openBroker(db, {
    scheduler: {
      tickMs: 5,
      ...(schedulerConcurrency === undefined ? {} : { concurrency: schedulerConcurrency }),
    },
    clock,
    ...(tokenEndpointConcurrency === undefined ? {} : { tokenEndpointConcurrency }),
  });
  let done = 0;
  tw.on("event", (e) => {
    if (e.outcome === "success" && e.integration === key) done += 1;
  });
  const deadline = Date.now() + 20_000;
  while (done < connections && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await tw.close();
  return { done, peak };
}

describe("the scheduler in a storm of expiries", () => {
  it("runs as many renewals at once as the endpoint's latency needs, not a fixed pool", async () => {
    const { done, peak: most } = await storm(120);
    expect(done).toBe(120);
    expect(most).toBeGreaterThan(8);
    expect(most).toBeLessThanOrEqual(64); // the default bound per token endpoint host
  });

  it("never has more requests at one token endpoint host than tokenEndpointConcurrency", async () => {
    const { done, peak: most } = await storm(60, 5);
    expect(done).toBe(60);
    expect(most).toBeLessThanOrEqual(5);
    expect(most).toBeGreaterThan(1);
  });
});

describe("the scheduler's own bound", () => {
  it("runs at most `concurrency` renewals, taking the next as each one ends", async () => {
    const { done, peak: most } = await storm(24, undefined, 3);
    expect(done).toBe(24);
    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBeGreaterThan(1);
  });
});

describe("HostLimit", () => {
  it("queues work beyond the limit per host, in arrival order, and frees the slot on failure", async () => {
    const limit = new HostLimit(2);
    const order: string[] = [];
    const gate: Array<() => void> = [];
    const job = (name: string, fail = false) =>
      limit.run("as.example", async () => {
        order.push(`start ${name}`);
        await new Promise<void>((resolve) => gate.push(resolve));
        if (fail) throw new Error(name);
        return name;
      });
    const a = job("a", true);
    const b = job("b");
    const c = job("c");
    const other = limit.run("other.example", async () => "other");
    expect(await other).toBe("other"); // another host is not held up
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(["start a", "start b"]);
    expect(limit.running("as.example")).toBe(2);
    gate.shift()?.();
    await expect(a).rejects.toThrow("a");
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(["start a", "start b", "start c"]);
    gate.shift()?.();
    gate.shift()?.();
    expect(await Promise.all([b, c])).toEqual(["b", "c"]);
    expect(limit.running("as.example")).toBe(0);
  });
});
