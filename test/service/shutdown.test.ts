import { request } from "undici";
import { expect, it } from "vitest";
import { openBroker } from "../fixtures/broker.js";
import { json, useServerAndDatabase } from "../fixtures/quirk-server.js";
import { startTestService } from "../fixtures/service.js";

const files = useServerAndDatabase();

it("a graceful shutdown lets a refresh in flight finish and be recorded", async () => {
  let release: () => void = () => undefined;
  files.server.on("/slow", (_req, res) => {
    release = () => json(res, 200, { access_token: "finished", expires_in: 600 });
  });
  const service = await startTestService({ apiKey: "k-0123456789", database: files.db });
  await service.tw.putIntegration({
    key: "slow",
    grantType: "client_credentials",
    tokenUrl: files.server.url("/slow"),
    clientId: "c",
  });
  await service.tw.putConnection({ id: "slow-1", integration: "slow" });
  const pending = request(`${service.url}/v1/connections/slow-1/token`, {
    headers: { authorization: "Bearer k-0123456789" },
  });
  while (files.server.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
  const closing = service.close();
  setTimeout(() => release(), 200);
  const res = await pending;
  expect(res.statusCode).toBe(200);
  expect(((await res.body.json()) as { accessToken: string }).accessToken).toBe("finished");
  await closing;
  // The refresh was written and recorded before the store closed.
  const tw = await openBroker(files.db);
  expect((await tw.listEvents("slow-1"))[0]).toMatchObject({
    outcome: "success",
    action: "obtain",
  });
  expect((await tw.getConnection("slow-1")).status).toBe("active");
  await tw.close();
});
