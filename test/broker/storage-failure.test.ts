import { afterAll, beforeAll, expect, it } from "vitest";
import { Tokenwarden } from "../../src/broker/tokenwarden.js";
import { openStore, type Store } from "../../src/store/index.js";
import { guardStore } from "../../src/store/storage-errors.js";
import { sqliteDatabase, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { caught } from "../helpers.js";

let server: QuirkServer;
let db: TestDatabase;
beforeAll(async () => {
  server = await startQuirkServer();
  db = await sqliteDatabase();
});
afterAll(async () => {
  await server.close();
  await db.drop();
});

it("a token the server issued but the store could not write fails as storage_error, not as a network failure", async () => {
  let issued = 0;
  server.on("/token", (_req, res) => {
    issued += 1;
    json(res, 200, { access_token: `issued-${issued}`, expires_in: 600 });
  });
  const real = await openStore({ database: db.url, secretKey: TEST_SECRET_KEY });
  // The database goes away between the token request and the write of its answer:
  // the driver's own error, through the store boundary.
  let writesFail = false;
  const store: Store = guardStore(
    new Proxy(real, {
      get(target, property) {
        const value = Reflect.get(target, property);
        if (property !== "updateState" || typeof value !== "function") return value;
        return (...args: Parameters<Store["updateState"]>) =>
          writesFail
            ? Promise.reject(
                Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
                  code: "ECONNREFUSED",
                }),
              )
            : target.updateState(...args);
      },
    }),
  );
  const tw = await Tokenwarden.open({ store, scheduler: false });
  try {
    await tw.putIntegration({
      key: "cc",
      grantType: "client_credentials",
      tokenUrl: server.url("/token"),
      clientId: "app",
    });
    await tw.putConnection({ id: "c1", integration: "cc" });
    writesFail = true;
    const error = await caught(() => tw.getToken("c1"));
    expect(issued).toBe(1); // the server answered...
    // ...the write is what failed, and says so.
    expect(error).toMatchObject({
      code: "storage_error",
      message: "the database is unreachable (ECONNREFUSED)",
    });
  } finally {
    await tw.close();
    await real.close();
  }
});
