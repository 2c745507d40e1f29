import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { Scheduler } from "../../src/broker/scheduler.js";
import { systemClock } from "../../src/core/clock.js";
import { TokenwardenError } from "../../src/core/errors.js";
import { openStore, type Store } from "../../src/store/index.js";
import { sqliteDatabase, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";

let db: TestDatabase;
let real: Store;
beforeEach(async () => {
  db = await sqliteDatabase();
  real = await openStore({ database: db.url, secretKey: TEST_SECRET_KEY });
});
afterEach(async () => {
  vi.useRealTimers();
  await real.close();
  await db.drop();
});

it("backs off while the store fails, and is back at its pace with the first tick that works", async () => {
  // The real store, whose scheduler query fails while `down` (the database is away).
  let down = true;
  const ticks: number[] = [];
  const store = new Proxy(real, {
    get(target, property) {
      if (property !== "claimDueConnections") return Reflect.get(target, property);
      return (now: number, limit: number, until: number) => {
        ticks.push(Date.now());
        return down
          ? Promise.reject(new TokenwardenError("storage_error", "the database is unreachable"))
          : target.claimDueConnections(now, limit, until);
      };
    },
  });
  vi.useFakeTimers();
  const start = Date.now();
  const scheduler = new Scheduler(store, systemClock, async () => undefined, {
    tickMs: 250,
    maxBackoffMs: 2000,
  });
  scheduler.start();
  await vi.advanceTimersByTimeAsync(10_000);
  const gaps = (from: number) => ticks.slice(from + 1).map((t, i) => t - (ticks[from + i] ?? 0));
  // Every 250 ms would be 41 ticks; doubling waits up to the cap make 7.
  expect(ticks[0]).toBe(start);
  expect(gaps(0)).toEqual([500, 1000, 2000, 2000, 2000, 2000]);

  down = false;
  const failed = ticks.length;
  await vi.advanceTimersByTimeAsync(3000);
  // The tick already waiting runs at the end of its backoff, then the pace is 250 ms.
  expect(ticks[failed]).toBe((ticks[failed - 1] ?? 0) + 2000);
  expect(gaps(failed).length).toBeGreaterThanOrEqual(4);
  expect(new Set(gaps(failed))).toEqual(new Set([250]));
  await scheduler.stop();
});
