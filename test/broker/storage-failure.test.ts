import { expect, it } from "vitest";
import { Tokenwarden } from "../../src/broker/tokenwarden.js";
import type { TokenEvent } from "../../src/core/events.js";
import { openStore } from "../../src/store/index.js";
import { TEST_SECRET_KEY } from "../fixtures/databases.js";
import { failingStore } from "../fixtures/failing-store.js";
import { json, useServerAndDatabase } from "../fixtures/quirk-server.js";

const files = useServerAndDatabase();

it("a token the server issued while the database was away is served, kept in memory, and written when it returns", async () => {
  let issued = 0;
  files.server.on("/token", (_req, res) => {
    issued += 1;
    json(res, 200, {
      access_token: `issued-${issued}`,
      refresh_token: `rotated-${issued}`,
      expires_in: 600,
    });
  });
  const real = await openStore({ database: files.db.url, secretKey: TEST_SECRET_KEY });
  // The database goes away between the token request and the write of its answer:
  // the driver's own error, through the store boundary.
  let writesFail = false;
  const store = failingStore(real, ["updateState"], () => writesFail);
  const tw = await Tokenwarden.open({ store, scheduler: false });
  const events: TokenEvent[] = [];
  tw.on("event", (e) => events.push(e));
  try {
    await tw.putIntegration({
      key: "cc",
      grantType: "client_credentials",
      tokenUrl: files.server.url("/token"),
      clientId: "app",
    });
    await tw.putConnection({ id: "c1", integration: "cc" });
    writesFail = true;
    // The server answered: its token (and the refresh token it rotated) is not lost.
    expect((await tw.getToken("c1")).accessToken).toBe("issued-1");
    expect(issued).toBe(1);
    expect(events.map((e) => [e.outcome, e.errorCode, e.errorDescription])).toEqual([
      [
        "success",
        "storage_error",
        "the database is unavailable: the new token is kept in memory and written when it returns",
      ],
    ]);
    expect((await real.getConnection("c1"))?.token).toBeUndefined();
    // The database returns: the token is written, with no second token request.
    writesFail = false;
    let written = await real.getConnection("c1");
    for (let tries = 0; tries < 200 && written?.token === undefined; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      written = await real.getConnection("c1");
    }
    expect(written?.token?.accessToken).toBe("issued-1");
    expect(written?.token?.refreshToken).toBe("rotated-1");
    expect(written?.state.status).toBe("active");
    expect(issued).toBe(1);
  } finally {
    await tw.close();
    await real.close();
  }
});
