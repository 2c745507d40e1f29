import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { ManualClock, type TokenEvent, type Tokenwarden } from "../../src/index.js";
import { openBrokerWithStore, storeOf } from "../fixtures/broker.js";
import { describeEachDriver, TEST_SECRET_KEY, type TestDatabase } from "../fixtures/databases.js";
import { loginAndConsent } from "../fixtures/interaction.js";
import {
  BASIC_CLIENT_ID,
  BASIC_CLIENT_SECRET,
  DEFAULT_REDIRECT_URI,
  type OidcFixture,
  startOidcProvider,
} from "../fixtures/oidc-provider.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";

/**
 * One refresh per connection, whatever starts it. Against oidc-provider, which rotates
 * refresh tokens and revokes the whole grant when a used one comes back: two refreshes
 * with the same refresh token would leave the connection needs_reauth, or active with a
 * token the server has revoked. Every pair of triggers fires at once, in one instance
 * and across two instances on one database (each with its own cache, flights and lease
 * holder, as two processes have), with the token endpoint slowed so that they overlap.
 */
const TOKEN_TTL_SECONDS = 300;
const TRIGGERS = ["demand", "schedule", "manual", "retry"] as const;
type Trigger = (typeof TRIGGERS)[number];

const PAIRS: Array<[Trigger, Trigger]> = [];
for (const [i, a] of TRIGGERS.entries()) for (const b of TRIGGERS.slice(i + 1)) PAIRS.push([a, b]);

let op: OidcFixture;
let api: QuirkServer;
/** Access tokens the API refuses (as if it had revoked them). */
const refused = new Set<string>();

beforeAll(async () => {
  op = await startOidcProvider({ accessTokenTtlSeconds: TOKEN_TTL_SECONDS });
  api = await startQuirkServer();
  api.on("/orders", (req, res) => {
    const token = String(req.headers.authorization ?? "").replace(/^Bearer /, "");
    if (refused.has(token)) return json(res, 401, { error: "invalid_token" });
    json(res, 200, { orders: [] });
  });
});
afterAll(async () => {
  await op.close();
  await api.close();
});

await describeEachDriver("triggers on $name", ({ create }) => {
  let db: TestDatabase;
  const clock = new ManualClock(Date.now());
  const open: Tokenwarden[] = [];

  async function instance(scheduler: boolean): Promise<Tokenwarden> {
    const tw = await openBrokerWithStore({
      database: db.url,
      secretKey: TEST_SECRET_KEY,
      clock,
      scheduler: scheduler ? { tickMs: 5 } : false,
    });
    open.push(tw);
    return tw;
  }

  beforeAll(async () => {
    db = await create();
  });
  afterEach(async () => {
    op.setTokenDelay(0);
    await Promise.all(open.splice(0).map((tw) => tw.close()));
  });
  afterAll(async () => {
    await db.drop();
  });

  async function authorizedConnection(tw: Tokenwarden, id: string): Promise<void> {
    await tw.putIntegration({
      key: "rotating",
      grantType: "authorization_code",
      authorizationUrl: op.authorizationUrl,
      tokenUrl: op.tokenUrl,
      revocationUrl: op.revocationUrl,
      clientId: BASIC_CLIENT_ID,
      clientSecret: BASIC_CLIENT_SECRET,
      scopes: ["openid", "api:read"],
      apiBaseUrl: api.origin,
      refreshAheadSeconds: 60,
    });
    await tw.putConnection({ id, integration: "rotating" });
    const { url } = await tw.startAuthorization(id, { redirectUri: DEFAULT_REDIRECT_URI });
    await tw.completeAuthorization((await loginAndConsent(url)).searchParams);
  }

  /** Starts one trigger; resolves with the access token it ended up using. */
  async function fire(trigger: Trigger, tw: Tokenwarden, id: string): Promise<string | null> {
    switch (trigger) {
      case "demand":
        // More life than the token has left inside its window: it must be renewed.
        return (await tw.getToken(id, { minTtlSeconds: 3600 })).accessToken;
      case "manual":
        await tw.refresh(id);
        return null;
      case "retry": {
        const res = await tw.fetch(id, "/orders");
        expect(res.status).toBe(200);
        return null;
      }
      case "schedule":
        // The instance's scheduler picks the connection up as soon as the clock says
        // it is due: moving the clock (done by the caller) is what starts it.
        return null;
    }
  }

  for (const across of [false, true]) {
    it.each(PAIRS)(
      `%s and %s at once, ${across ? "in two instances" : "in one instance"}: one refresh request, the connection active, the token live`,
      async (a, b) => {
        const id = `pair-${a}-${b}-${across ? "x" : "1"}`;
        const setup = await instance(false);
        await authorizedConnection(setup, id);
        const one = await instance(a === "schedule" || (!across && b === "schedule"));
        const two = across ? await instance(b === "schedule") : one;
        const events: TokenEvent[] = [];
        for (const tw of new Set([one, two])) tw.on("event", (e) => events.push(e));

        const old = await one.getToken(id);
        await two.getToken(id);
        refused.add(old.accessToken);
        const stored = await storeOf(setup).getConnection(id);
        op.setTokenDelay(300);
        const before = op.tokenRequestLog.length;

        // Inside the refresh window, with 30 s left: every trigger wants a renewal.
        clock.set((stored?.token?.expiresAt as number) - 30_000);
        const served = await Promise.all([fire(a, one, id), fire(b, two, id)]);
        // A scheduled renewal runs in the background: wait for its token to be written.
        const deadline = Date.now() + 10_000;
        while (
          (await storeOf(setup).getConnection(id))?.state.tokenVersion ===
          stored?.state.tokenVersion
        ) {
          if (Date.now() > deadline) throw new Error("no renewal happened");
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        // Let anything still running (a background renewal) settle before counting.
        await Promise.all([one.close(), two.close()]);

        const requests = op.tokenRequestLog.slice(before);
        expect(requests.map((r) => [r.grantType, r.status])).toEqual([["refresh_token", 200]]);
        expect(events.filter((e) => e.outcome === "failure")).toEqual([]);
        expect(events.filter((e) => e.action === "refresh")).toHaveLength(1);

        const view = await setup.getConnection(id);
        expect(view.status).toBe("active");
        expect(view.lastError).toBeNull();
        const current = (await storeOf(setup).getConnection(id))?.token;
        expect(current?.accessToken).not.toBe(old.accessToken);
        for (const token of served) if (token !== null) expect(token).toBe(current?.accessToken);
        // The server agrees: the stored access and refresh tokens are live.
        expect((await op.introspect(current?.accessToken as string)).active).toBe(true);
        expect((await op.introspect(current?.refreshToken as string)).active).toBe(true);
        // Out of the way of the next pair's schedulers.
        await setup.deleteConnection(id);
      },
    );
  }
});
