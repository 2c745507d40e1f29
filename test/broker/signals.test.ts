/**
 * The broker's signals for what nobody waits on: a status event only after the write
 * that changed the status succeeded, and a warning naming the connection for a
 * scheduled renewal that failed before any attempt (so no event tells it).
 */
import { expect, it } from "vitest";
import type { StatusChange } from "../../src/broker/status.js";
import { Tokenwarden, type TokenwardenWarning } from "../../src/broker/tokenwarden.js";
import type { TokenEvent } from "../../src/core/events.js";
import { openStore, type Store } from "../../src/store/index.js";
import { TEST_SECRET_KEY } from "../fixtures/databases.js";
import { failingStore } from "../fixtures/failing-store.js";
import { json, useServerAndDatabase } from "../fixtures/quirk-server.js";

const files = useServerAndDatabase();

/** The store, with the named methods failing as a driver does while `failing` holds. */
async function flakyStore(
  methods: readonly (keyof Store)[],
): Promise<{ store: Store; real: Store; fail(on: boolean): void }> {
  const real = await openStore({ database: files.db.url, secretKey: TEST_SECRET_KEY });
  let failing = false;
  const store = failingStore(real, methods, () => failing);
  return { store, real, fail: (on) => (failing = on) };
}

it("a scheduled renewal that fails before its attempt is a warning naming the connection", async () => {
  files.server.on("/sched/token", (_req, res) =>
    json(res, 200, { access_token: "t", expires_in: 600 }),
  );
  // A scheduled renewal claims its lease with its batch's (tryClaimLeases).
  const { store, real, fail } = await flakyStore(["tryClaimLease", "tryClaimLeases"]);
  const tw = await Tokenwarden.open({ store, scheduler: { tickMs: 10 } });
  const warnings: TokenwardenWarning[] = [];
  const events: TokenEvent[] = [];
  tw.on("warning", (w) => warnings.push(w));
  tw.on("event", (e) => events.push(e));
  try {
    fail(true);
    await tw.putIntegration({
      key: "sched",
      grantType: "client_credentials",
      tokenUrl: files.server.url("/sched/token"),
      clientId: "app",
    });
    await tw.putConnection({ id: "s1", integration: "sched" });
    while (warnings.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(warnings[0]).toMatchObject({
      code: "renewal_failed",
      connectionId: "s1",
      integration: "sched",
      errorCode: "storage_error",
    });
    expect(warnings[0]?.message).toContain("connection s1");
    expect(events).toEqual([]); // no attempt was made: nothing else would have told it
  } finally {
    fail(false);
    await tw.close();
    await real.close();
  }
});

it("a status change is told only once written; a failure the database did not take changes none", async () => {
  let mode: "down" | "ok" = "down";
  files.server.on("/status/token", (_req, res) =>
    mode === "down"
      ? json(res, 503, { error: "temporarily_unavailable" })
      : json(res, 200, { access_token: "fine", expires_in: 600 }),
  );
  const { store, real, fail } = await flakyStore(["updateState"]);
  const tw = await Tokenwarden.open({ store, scheduler: false });
  const changes: StatusChange[] = [];
  const events: TokenEvent[] = [];
  tw.on("status", (c) => changes.push(c));
  tw.on("event", (e) => events.push(e));
  try {
    await tw.putIntegration({
      key: "st",
      grantType: "client_credentials",
      tokenUrl: files.server.url("/status/token"),
      clientId: "app",
    });
    await tw.putConnection({ id: "st-1", integration: "st", environment: "prod" });
    fail(true);
    await expect(tw.refresh("st-1")).rejects.toMatchObject({ code: "token_endpoint_error" });
    expect(events.map((e) => e.outcome)).toEqual(["failure"]);
    expect(changes).toEqual([]); // the write of `error` failed: nothing to tell
    expect((await real.getConnection("st-1"))?.state.status).toBe("active");
    fail(false);
    await expect(tw.refresh("st-1")).rejects.toMatchObject({ code: "token_endpoint_error" });
    expect(changes).toEqual([
      {
        connectionId: "st-1",
        integration: "st",
        environment: "prod",
        previousStatus: "active",
        status: "error",
        error: expect.objectContaining({ code: "token_endpoint_error" }),
      },
    ]);
    mode = "ok";
    await tw.refresh("st-1");
    expect(changes.at(-1)).toEqual({
      connectionId: "st-1",
      integration: "st",
      environment: "prod",
      previousStatus: "error",
      status: "active",
    });
    // A refresh that leaves it active changes nothing.
    await tw.refresh("st-1");
    expect(changes).toHaveLength(2);
  } finally {
    await tw.close();
    await real.close();
  }
});
