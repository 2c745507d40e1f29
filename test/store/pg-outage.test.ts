import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseIntegration } from "../../src/core/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { TEST_SECRET_KEY } from "../fixtures/databases.js";
import { type PgCluster, skipWithoutPgCluster, startPgCluster } from "../fixtures/pg-cluster.js";
import { until } from "../fixtures/until.js";
import { caught } from "../helpers.js";

/**
 * The PostgreSQL store against a cluster of the test's own, stopped and restarted
 * under it. The file's setup (test/setup/fail-on-unhandled.ts) fails any test during
 * which a pool or client error went unhandled: here that would have ended the process.
 */
const STATEMENT_TIMEOUT_MS = 500;

const integration = (key: string) =>
  parseIntegration({
    key,
    grantType: "client_credentials",
    tokenUrl: "https://auth.example.com/token",
    clientId: "app",
  });

describe.skipIf(skipWithoutPgCluster("the PostgreSQL outage tests"))(
  "the PostgreSQL store when the database goes away",
  () => {
    let cluster: PgCluster;
    let store: Store;
    beforeAll(async () => {
      cluster = await startPgCluster();
      store = await openStore({
        database: cluster.url,
        secretKey: TEST_SECRET_KEY,
        statementTimeoutMs: STATEMENT_TIMEOUT_MS,
        connectTimeoutMs: 2000,
      });
    }, 60_000);
    afterAll(async () => {
      await store?.close();
      await cluster?.destroy();
    });

    it("fails with storage_error while the database is stopped, and works again when it is back", async () => {
      await store.putIntegration(integration("before"), 1);
      await cluster.stop();
      try {
        for (const call of [
          () => store.getIntegration("before"),
          () => store.putIntegration(integration("during"), 2),
          () => store.updateState("c1", { failureCount: 1 }, 2),
          () => store.tryClaimLease("c1", "h", 10, 1),
          () => store.claimDueConnections(1, 10, 2),
          () => store.deleteConnection("c1"), // a transaction
          () => store.publishChange("connection:c1"),
        ]) {
          const error = await caught(call);
          expect(error).toMatchObject({ code: "storage_error", retryAfterSeconds: 5 });
          expect(error.message).toBe("the database is unreachable (ECONNREFUSED)");
        }
        expect(await store.ping()).toBe(false);
      } finally {
        await cluster.start();
      }
      await until("ping", async () => ((await store.ping()) ? true : undefined));
      await store.putIntegration(integration("after"), 3);
      expect((await store.listIntegrations()).map((i) => i.integration.key)).toEqual([
        "after",
        "before",
      ]);
    });

    it("survives a fast restart with statements and transactions in flight", async () => {
      await store.listIntegrations(); // the pool holds idle connections the restart will kill
      let running = true;
      const failures: unknown[] = [];
      let succeeded = 0;
      const worker = async () => {
        while (running) {
          try {
            await store.deleteConnection("nobody"); // begin, three deletes, commit
            await store.listIntegrations();
            succeeded += 1;
          } catch (error) {
            failures.push(error);
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
      };
      const workers = Array.from({ length: 6 }, worker);
      await until("some work before the restart", async () => (succeeded > 10 ? true : undefined));
      await cluster.restart();
      const before = succeeded;
      await until("work after the restart", async () =>
        succeeded > before + 10 ? true : undefined,
      );
      running = false;
      await Promise.all(workers);
      expect(failures.length).toBeGreaterThan(0); // the restart was felt...
      for (const failure of failures) expect(failure).toMatchObject({ code: "storage_error" }); // ...only as that
    });

    it("listens again after a restart, says so, and delivers what is published next", async () => {
      const other = await openStore({ database: cluster.url, secretKey: TEST_SECRET_KEY });
      try {
        const received: string[] = [];
        let resubscribed = 0;
        const unsubscribe = await store.subscribeChanges(
          (topic) => received.push(topic),
          () => {
            resubscribed += 1;
          },
        );
        await other.publishChange("before");
        await until("the first notification", async () =>
          received.includes("before") ? true : undefined,
        );
        await cluster.restart();
        await until("re-subscribed", async () => (resubscribed === 1 ? true : undefined));
        await until("a notification after the restart", async () => {
          await other.publishChange("after");
          return received.includes("after") ? true : undefined;
        });
        await unsubscribe();
      } finally {
        await other.close();
      }
    });

    it("ends a statement stuck behind a lock at the statement timeout, as storage_error", async () => {
      const locker = new pg.Client({ connectionString: cluster.url });
      await locker.connect();
      try {
        await locker.query("begin");
        await locker.query("lock table tw_integrations in access exclusive mode");
        // Without the timeout this waits for the lock for ever (the test's own timeout).
        const error = await caught(() => store.listIntegrations());
        expect(error).toMatchObject({
          code: "storage_error",
          message: "the database statement timed out (statement_timeout)",
        });
      } finally {
        await locker.query("rollback");
        await locker.end();
      }
      expect((await store.listIntegrations()).length).toBe(2);
    });
  },
);
