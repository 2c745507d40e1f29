import { decodeJwt } from "jose";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Tokenwarden } from "../../src/index.js";
import { openBroker } from "../fixtures/broker.js";
import { describeEachDriver, type TestDatabase } from "../fixtures/databases.js";
import { loginAndConsent } from "../fixtures/interaction.js";
import { type McpFixture, startMcpServer } from "../fixtures/mcp-server.js";
import {
  DEFAULT_CLIENTS,
  DEFAULT_REDIRECT_URI,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";

/**
 * One MCP client per integration, however the first authorizations race: two
 * Tokenwarden instances on one database (each with its own in-process single flight,
 * as two processes have) start the first authorization of the same MCP integration at
 * once, with several starts each. The registration endpoint is slowed down so that
 * every start is still waiting when the others begin: without the lease each instance
 * would register its own client. The provider counts what it registered.
 */
const STARTS_PER_INSTANCE = 3;

let op: OidcFixture;
let mcp: McpFixture;

beforeAll(async () => {
  mcp = await startMcpServer({
    metadata: () => ({ authorization_servers: [op.issuer], scopes_supported: ["api:read"] }),
  });
  op = await startOidcProvider({
    registration: true,
    resourceServers: [mcp.url],
    clients: [...DEFAULT_CLIENTS],
  });
  op.setRegistrationDelay(400);
});
afterAll(async () => {
  await op?.close();
  await mcp?.close();
});

await describeEachDriver("two instances on one $name database", ({ create }) => {
  let db: TestDatabase;
  let first: Tokenwarden;
  let second: Tokenwarden;

  beforeAll(async () => {
    db = await create();
    first = await openBroker(db);
    second = await openBroker(db);
  });
  afterAll(async () => {
    await first?.close();
    await second?.close();
    await db?.drop();
  });

  it("racing the first authorization of one MCP integration register one client, and both use it", async () => {
    const integration = `race-${db.url.startsWith("sqlite") ? "sqlite" : "pg"}`;
    await first.putIntegration({ key: integration, mcpServerUrl: mcp.url });
    const ids: Array<{ tw: Tokenwarden; id: string }> = [];
    for (const [n, tw] of [first, second].entries()) {
      for (let i = 0; i < STARTS_PER_INSTANCE; i++) {
        const id = `${integration}-${n}-${i}`;
        await first.putConnection({ id, integration });
        ids.push({ tw, id });
      }
    }
    const before = op.registeredClients.length;

    const started = await Promise.all(
      ids.map(({ tw, id }) => tw.startAuthorization(id, { redirectUri: DEFAULT_REDIRECT_URI })),
    );

    const registered = op.registeredClients.slice(before);
    expect(registered).toHaveLength(1);
    const clientIds = started.map(({ url }) => new URL(url).searchParams.get("client_id"));
    expect(new Set(clientIds)).toEqual(new Set(registered));

    // Each instance completes one of its authorizations with that client, and its
    // refresh authenticates as it (the secret the other instance stored).
    for (const [n, tw] of [first, second].entries()) {
      const index = n * STARTS_PER_INSTANCE;
      const { id } = ids[index] as { id: string };
      const callback = await loginAndConsent((started[index] as { url: string }).url);
      expect((await tw.completeAuthorization(callback.searchParams)).status).toBe("active");
      const token = decodeJwt((await tw.getToken(id)).accessToken);
      expect(token.client_id).toBe(registered[0]);
      expect(token.aud).toBe(mcp.url);
      expect((await tw.refresh(id)).status).toBe("active");
    }
    expect(op.registeredClients.length - before).toBe(1);
  });
});
