import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type CacheEntry, TokenCache } from "../../src/broker/token-cache.js";
import { ManualClock, type TokenEvent, type Tokenwarden } from "../../src/index.js";
import { openBroker } from "../fixtures/broker.js";
import { sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { caught } from "../helpers.js";

/**
 * The token cache is bounded, and holds what this process is asked for: a scheduled
 * renewal keeps a held token current but adds none, so a storm of a million renewals
 * leaves memory as it found it. SQLite has no change channel, so a token renewed by
 * another instance shows whether this one answered from its cache or from the store.
 */
let quirk: QuirkServer;
let db: TestDatabase;
let issued = 0;
const open: Tokenwarden[] = [];

beforeAll(async () => {
  quirk = await startQuirkServer();
  quirk.on("/token", (_req, res) => {
    issued++;
    json(res, 200, { access_token: `access-${issued}-0123456789`, expires_in: 300 });
  });
  db = await sqliteDatabase();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((tw) => tw.close()));
});
afterAll(async () => {
  await quirk.close();
  await db.drop();
});

async function instance(options: Parameters<typeof openBroker>[1] = {}) {
  const tw = await openBroker(db, options);
  open.push(tw);
  return tw;
}

async function connections(tw: Tokenwarden, key: string, ids: string[]) {
  await tw.putIntegration({
    key,
    grantType: "client_credentials",
    tokenUrl: quirk.url("/token"),
    clientId: "app",
    refreshAheadSeconds: 60,
  });
  for (const id of ids) await tw.putConnection({ id, integration: key });
}

/** Another instance renews `id` behind this one's back, and returns the new token. */
async function renewedElsewhere(other: Tokenwarden, id: string): Promise<string> {
  await other.refresh(id);
  return (await other.getToken(id)).accessToken;
}

function entry(version: number, accessToken = `t${version}`): CacheEntry {
  return { token: { accessToken }, version } as unknown as CacheEntry;
}

describe("TokenCache", () => {
  it("evicts the oldest entry not read since, and gives one read a second chance", () => {
    const cache = new TokenCache(2);
    cache.set("a", entry(1));
    cache.set("b", entry(1));
    cache.set("c", entry(1)); // full: "a", the oldest and never read, goes
    expect([cache.has("a"), cache.has("b"), cache.has("c")]).toEqual([false, true, true]);
    expect(cache.get("b")).toBeDefined(); // read: passed over once
    cache.set("d", entry(1));
    expect([cache.has("b"), cache.has("c"), cache.has("d")]).toEqual([true, false, true]);
    expect(cache.size).toBe(2);
  });

  it("evicts the oldest when every entry was read, never the one being stored", () => {
    const cache = new TokenCache(2);
    cache.set("a", entry(1));
    cache.set("b", entry(1));
    cache.get("a");
    cache.get("b");
    cache.set("c", entry(1));
    expect([cache.has("a"), cache.has("b"), cache.has("c")]).toEqual([false, true, true]);
  });

  it("never puts an older token version back, and update adds nothing", () => {
    const cache = new TokenCache(10);
    cache.set("a", entry(3));
    cache.set("a", entry(2));
    expect(cache.get("a")?.version).toBe(3);
    cache.update("a", entry(1));
    expect(cache.get("a")?.version).toBe(3);
    cache.update("a", entry(4));
    expect(cache.get("a")?.version).toBe(4);
    cache.update("b", entry(1));
    expect(cache.has("b")).toBe(false);
  });

  it("refuses a size below one", async () => {
    const error = await caught(async () => new TokenCache(0));
    expect(error.code).toBe("invalid_config");
  });
});

describe("the broker's token cache", () => {
  it("holds at most tokenCacheSize tokens: one pushed out is read from the store again", async () => {
    const reader = await instance({ tokenCacheSize: 2 });
    const other = await instance();
    await connections(other, "bounded", ["b1", "b2", "b3"]);
    const held = {
      b1: (await reader.getToken("b1")).accessToken,
      b2: (await reader.getToken("b2")).accessToken,
    };
    await reader.getToken("b2"); // read again: b2 stays when b3 comes in, b1 goes
    const b3 = (await reader.getToken("b3")).accessToken;
    const elsewhere = {
      b1: await renewedElsewhere(other, "b1"),
      b2: await renewedElsewhere(other, "b2"),
      b3: await renewedElsewhere(other, "b3"),
    };
    // Held: the tokens this instance cached (it hears of no change on SQLite).
    expect((await reader.getToken("b2")).accessToken).toBe(held.b2);
    expect((await reader.getToken("b3")).accessToken).toBe(b3);
    // Pushed out: read from the store, so the other instance's token.
    expect((await reader.getToken("b1")).accessToken).toBe(elsewhere.b1);
    expect(elsewhere.b2).not.toBe(held.b2);
  });

  it("a scheduled renewal updates a held token and caches none that nobody read here", async () => {
    const clock = new ManualClock(Date.now());
    const setup = await instance({ clock });
    await connections(setup, "sched", ["read-here", "not-read"]);
    const successes: TokenEvent[] = [];
    // Room for one token: a renewal that cached "not-read" would push "read-here" out.
    const tw = await instance({ clock, scheduler: { tickMs: 5 }, tokenCacheSize: 1 });
    tw.on("event", (e) => {
      // (The earlier test's connections share the database: only this test's count.)
      if (e.outcome === "success" && e.trigger === "schedule" && e.integration === "sched")
        successes.push(e);
    });
    const scheduled = async (count: number) => {
      // New connections are due at once; then each comes due in its refresh window.
      for (let i = 0; i < 2000 && successes.length < count; i++)
        await new Promise((resolve) => setTimeout(resolve, 5));
      expect(successes.length).toBe(count);
    };
    await scheduled(2);
    const first = (await tw.getToken("read-here")).accessToken;
    clock.advance(250_000); // 50 s left of 300: both windows (60 s) are open
    await scheduled(4);
    const elsewhere = {
      readHere: await renewedElsewhere(setup, "read-here"),
      notRead: await renewedElsewhere(setup, "not-read"),
    };
    // The scheduler's token, from the cache: neither the first nor the store's newest.
    const held = (await tw.getToken("read-here")).accessToken;
    expect(held).not.toBe(first);
    expect(held).not.toBe(elsewhere.readHere);
    // Never cached: read from the store.
    expect((await tw.getToken("not-read")).accessToken).toBe(elsewhere.notRead);
  });
});
