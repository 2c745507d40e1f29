import { afterAll, beforeAll, expect, it } from "vitest";
import { Tokenwarden } from "../../src/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/store.js";
import { postgresDatabase, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { until } from "../fixtures/until.js";
import { caught } from "../helpers.js";

/**
 * Two brokers on one PostgreSQL database, as two processes of a cluster: when one
 * changes or deletes an integration, the other drops what it cached about it (its
 * connections' tokens, the discovery document it was prepared with) once told on the
 * change channel. The token endpoints are two real oidc-providers; the discovery
 * documents come from a small server of ours, because the case is a document that
 * changes under the same URL (the server moved its token endpoint), with a max-age of
 * an hour that would otherwise keep the old one.
 */
let opOld: OidcFixture;
let opNew: OidcFixture;
/** The discovery documents' servers: tenant-a on one origin, tenant-b on another. */
let meta: QuirkServer;
let metaB: QuirkServer;
let db: TestDatabase;
let storeB: Store;
let a: Tokenwarden;
let b: Tokenwarden;
/** The change messages broker B has heard (and acted on: its handler runs first). */
const heard: string[] = [];
/** The token endpoint each tenant's discovery document names. */
const tokenEndpoint = new Map<string, string>();

beforeAll(async () => {
  opOld = await startOidcProvider();
  opNew = await startOidcProvider();
  meta = await startQuirkServer();
  metaB = await startQuirkServer();
  for (const tenant of ["tenant-a", "tenant-b"]) {
    const server = serverOf(tenant);
    tokenEndpoint.set(tenant, opOld.tokenUrl);
    server.on(`/${tenant}/.well-known/openid-configuration`, (_req, res) =>
      json(
        res,
        200,
        { issuer: server.url(`/${tenant}`), token_endpoint: tokenEndpoint.get(tenant) },
        { "cache-control": "max-age=3600" },
      ),
    );
  }
  db = await postgresDatabase();
  a = await Tokenwarden.open({ database: db.url, secretKey: TEST_SECRET_KEY, scheduler: false });
  storeB = await openStore({ database: db.url, secretKey: TEST_SECRET_KEY });
  const subscribe = storeB.subscribeChanges.bind(storeB);
  storeB.subscribeChanges = (onChange, onResubscribed) =>
    subscribe((message) => {
      onChange(message);
      heard.push(message);
    }, onResubscribed);
  b = await Tokenwarden.open({ store: storeB, scheduler: false });
});
afterAll(async () => {
  await b?.close();
  await storeB?.close();
  await a?.close();
  await db?.drop();
  await meta?.close();
  await metaB?.close();
  await opNew?.close();
  await opOld?.close();
});

const serverOf = (tenant: string) => (tenant === "tenant-a" ? meta : metaB);
const metadataReads = (tenant: string) =>
  serverOf(tenant).requests.filter((r) => r.url.pathname.startsWith(`/${tenant}/`)).length;
const grants = (op: OidcFixture) =>
  op.tokenRequestLog.filter((e) => e.grantType === "client_credentials").length;

/** Until broker B has heard `topic` from A (after `from` messages). */
async function bHears(topic: string, from: number): Promise<void> {
  await until(`broker B hears ${topic}`, async () =>
    heard.slice(from).some((m) => m.endsWith(`|${topic}`)) ? true : undefined,
  );
}

const integration = (tenant: string, extra: Record<string, unknown> = {}) => ({
  key: "moving",
  grantType: "client_credentials",
  discoveryUrl: serverOf(tenant).url(`/${tenant}`),
  clientId: BASIC_CLIENT_ID,
  clientSecret: BASIC_CLIENT_SECRET,
  ...extra,
});

it("a changed integration: the other process reads its discovery document again", async () => {
  await a.putIntegration(integration("tenant-a"));
  await a.putConnection({ id: "m1", integration: "moving" });
  await b.getToken("m1");
  await b.refresh("m1");
  // One read for both: the document is cached for its max-age.
  expect(metadataReads("tenant-a")).toBe(1);
  expect(grants(opOld)).toBe(2);

  // The server moves its token endpoint; the person edits the integration.
  tokenEndpoint.set("tenant-a", opNew.tokenUrl);
  const from = heard.length;
  await a.putIntegration(integration("tenant-a", { displayName: "Moving (new endpoint)" }));
  await bHears("integration:moving", from);
  await b.refresh("m1");
  expect(metadataReads("tenant-a")).toBe(2);
  expect(grants(opNew)).toBe(1);
  // And in the process that made the change.
  await a.refresh("m1");
  expect(metadataReads("tenant-a")).toBe(3);
  expect(grants(opNew)).toBe(2);
});

it("a discoveryUrl on another origin: the other process stops serving its cached token and reads the new document", async () => {
  const cached = (await b.getToken("m1")).accessToken;
  const from = heard.length;
  // Another origin: the secret is sent again (security rule 3), the token is forgotten.
  await a.putIntegration(integration("tenant-b"));
  await bHears("integration:moving", from);
  const fresh = await b.getToken("m1");
  expect(fresh.accessToken).not.toBe(cached);
  expect(metadataReads("tenant-b")).toBe(1);
});

it("a deleted integration: the other process answers not_found, and reads the document again for a new one", async () => {
  await b.getToken("m1");
  const from = heard.length;
  await a.deleteConnection("m1");
  await a.deleteIntegration("moving");
  await bHears("integration:moving", from);
  expect(await caught(() => b.getToken("m1"))).toMatchObject({ code: "not_found" });

  // Made again under the same key and URL: nothing of the old one is reused.
  tokenEndpoint.set("tenant-b", opNew.tokenUrl);
  const before = grants(opNew);
  await a.putIntegration(integration("tenant-b"));
  await a.putConnection({ id: "m1", integration: "moving" });
  await b.getToken("m1");
  expect(metadataReads("tenant-b")).toBe(2);
  expect(grants(opNew)).toBe(before + 1);
});
