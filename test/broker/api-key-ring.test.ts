/**
 * The key ring remembers, per caller (its connection), the key presented last, so the
 * same key again is not hashed again. What it remembers must never outlive the key
 * nor stand for another key.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tokenwarden } from "../../src/broker/tokenwarden.js";
import { openBroker } from "../fixtures/broker.js";
import { sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";

const FIXED = "ring-fixed-key-0123456789";
let db: TestDatabase;
let tw: Tokenwarden;

beforeAll(async () => {
  db = await sqliteDatabase();
  tw = await openBroker(db);
});
afterAll(async () => {
  await tw.close();
  await db.drop();
});

describe("ApiKeyRing, remembering a caller's key", () => {
  it("gives each key its own grant on one connection, never the one remembered", async () => {
    const admin = await tw.apiKeys.create({ name: "admin" });
    const client = await tw.apiKeys.create({ name: "client", role: "client" });
    const ring = tw.apiKeys.ring([FIXED]);
    await ring.reload();
    const connection = {};
    expect(ring.knownGrant(admin.key, connection)?.id).toBe(admin.id);
    expect(ring.knownGrant(admin.key, connection)?.id).toBe(admin.id);
    expect(ring.knownGrant(client.key, connection)?.id).toBe(client.id);
    // One character off the key remembered on this very connection.
    const last = client.key.at(-1) === "a" ? "b" : "a";
    expect(ring.knownGrant(`${client.key.slice(0, -1)}${last}`, connection)).toBeUndefined();
    expect(ring.knownGrant(`${client.key}x`, connection)).toBeUndefined();
    expect(ring.knownGrant(FIXED, connection)?.id).toBe("env:0");
    expect(ring.knownGrant(admin.key, {})?.id).toBe(admin.id);
    expect(await ring.verify(client.key, connection)).toMatchObject({ id: client.id });
    expect(await ring.verify("not a key", connection)).toBeUndefined();
  });

  it("forgets a deleted key at the next load, remembered or not", async () => {
    const doomed = await tw.apiKeys.create({ name: "doomed", role: "client" });
    const ring = tw.apiKeys.ring();
    await ring.reload();
    const connection = {};
    expect(ring.knownGrant(doomed.key, connection)?.id).toBe(doomed.id);
    await tw.apiKeys.delete(doomed.id);
    expect(ring.knownGrant(doomed.key, connection)?.id).toBe(doomed.id); // until the load
    await ring.reload();
    expect(ring.knownGrant(doomed.key, connection)).toBeUndefined();
    expect(await ring.verify(doomed.key, connection)).toBeUndefined();
  });
});
