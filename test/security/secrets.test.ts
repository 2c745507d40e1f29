import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tokenwarden } from "../../src/broker/tokenwarden.js";
import { storeOf } from "../fixtures/broker.js";
import { describeEachDriver, sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";
import { caught, type LooseJson } from "../helpers.js";
import {
  CERT_PEM,
  everythingStored,
  newKey,
  openTw,
  privateKeyPem,
  rawQuery,
  startTestService,
  type TestService,
  tokenSet,
} from "./support.js";

/**
 * Secrets are write-only and sealed at rest, tls.key included, and stay bound to the
 * destinations they were stored for (PRODUCT.md security rules 3 and 8).
 */
await describeEachDriver("secrets on $name", ({ create }) => {
  let db: TestDatabase;
  let tw: Tokenwarden;
  const key = newKey();

  beforeAll(async () => {
    db = await create();
    tw = await openTw(db, key);
  });
  afterAll(async () => {
    await tw.close();
    await db.drop();
  });

  const mtls = (id: string, marker: string, extra: Record<string, unknown> = {}) => ({
    key: id,
    grantType: "client_credentials",
    tokenUrl: "https://auth.acme.example/oauth/token",
    clientId: "app",
    clientSecret: `cs-${marker}`,
    tls: { cert: CERT_PEM, key: privateKeyPem(marker) },
    ...extra,
  });

  it("never shows tls.key: views say { set }, at rest it is sealed", async () => {
    const marker = "TLSKEYMARKER0001";
    const view = (await tw.putIntegration(mtls("m1", marker))) as LooseJson;
    expect(view.tls.key).toEqual({ set: true });
    expect(view.clientSecret).toEqual({ set: true });
    for (const shown of [view, await tw.getIntegration("m1"), await tw.listIntegrations()]) {
      expect(JSON.stringify(shown)).not.toContain(marker);
    }
    // The broker itself still has it, for the TLS handshake.
    expect((await storeOf(tw).getIntegration("m1"))?.integration.tls.key).toBe(
      privateKeyPem(marker),
    );
    const stored = await everythingStored(db);
    expect(stored).not.toContain(marker);
    const [row] = await rawQuery(
      db,
      "select document, sealed_secrets from tw_integrations where key = $1",
      ["m1"],
    );
    expect(String(row?.document)).not.toContain("PRIVATE KEY");
    expect(String(row?.sealed_secrets)).toMatch(/^tw1\./);
  });

  it("keeps tls.key when a PUT leaves it out or sends its { set } view back, removes it on null", async () => {
    await tw.putIntegration(mtls("m2", "TLSKEYMARKER0002"));
    // Left out, with the certificate sent again (an editor cannot send the key back).
    await tw.putIntegration({
      ...mtls("m2", "x"),
      clientSecret: undefined,
      tls: { cert: CERT_PEM },
    });
    expect((await storeOf(tw).getIntegration("m2"))?.integration.tls.key).toBe(
      privateKeyPem("TLSKEYMARKER0002"),
    );
    // The view itself sent back, as an admin form would.
    const view = (await tw.getIntegration("m2")) as LooseJson;
    const { createdAt: _c, updatedAt: _u, ...editable } = view;
    await tw.putIntegration({ ...editable, displayName: "edited" });
    const kept = await storeOf(tw).getIntegration("m2");
    expect(kept?.integration.tls.key).toBe(privateKeyPem("TLSKEYMARKER0002"));
    expect(kept?.integration.clientSecret).toBe("cs-TLSKEYMARKER0002");
    // null removes it (with its certificate: mutual TLS needs both).
    await tw.putIntegration({ ...mtls("m2", "x"), clientSecret: undefined, tls: { key: null } });
    expect((await tw.getIntegration("m2")).tls.key).toEqual({ set: false });
    expect((await storeOf(tw).getIntegration("m2"))?.integration.tls.key).toBeUndefined();
  });

  it("refuses a key that is not a string, whatever its spelling, without echoing it", async () => {
    for (const spelling of [
      { set: "yes" },
      ["-----BEGIN PRIVATE KEY-----"],
      42,
      { set: true, value: "k" },
    ]) {
      const error = await caught(() =>
        tw.putIntegration({ ...mtls("m3", "y"), tls: { cert: CERT_PEM, key: spelling } }),
      );
      expect(error).toMatchObject({ code: "invalid_config" });
      expect(String(error.message)).toContain("tls.key");
    }
  });

  it("opens an integration stored by an older version (tls.key in the clear) and seals it", async () => {
    const marker = "LEGACYTLSKEY0003";
    await tw.putIntegration({
      key: "legacy",
      grantType: "client_credentials",
      tokenUrl: "https://auth.acme.example/t",
      clientId: "app",
    });
    // What versions before 0004 wrote: the document with tls.key as it came.
    const document = {
      ...(await storeOf(tw).getIntegration("legacy"))?.integration,
      tls: { mode: "verify", cert: CERT_PEM, key: privateKeyPem(marker) },
    };
    await rawQuery(
      db,
      "update tw_integrations set document = $1, sealed_secrets = null where key = $2",
      [JSON.stringify(document), "legacy"],
    );
    const reopened = await openTw(db, key);
    try {
      expect((await storeOf(reopened).getIntegration("legacy"))?.integration.tls.key).toBe(
        privateKeyPem(marker),
      );
      expect((await reopened.getIntegration("legacy")).tls.key).toEqual({ set: true });
      const [row] = await rawQuery(
        db,
        "select document, sealed_secrets from tw_integrations where key = $1",
        ["legacy"],
      );
      expect(String(row?.document)).not.toContain(marker);
      expect(String(row?.sealed_secrets)).toMatch(/^tw1\./);
    } finally {
      await reopened.close();
    }
  });

  describe("a stored secret goes only where it was stored for", () => {
    const base = {
      key: "dst",
      grantType: "client_credentials",
      tokenUrl: "https://auth.acme.example/oauth/token",
      revocationUrl: "https://auth.acme.example/oauth/revoke",
      clientId: "app",
    };
    beforeAll(async () => {
      await tw.putIntegration({ ...base, clientSecret: "dst-secret-1" });
    });

    const moves: Array<[string, Record<string, unknown>]> = [
      ["another host", { tokenUrl: "https://evil.example/oauth/token" }],
      ["another port", { tokenUrl: "https://auth.acme.example:8443/oauth/token" }],
      ["another scheme", { tokenUrl: "http://auth.acme.example/oauth/token" }],
      [
        "userinfo that reads like the old host",
        { tokenUrl: "https://auth.acme.example@evil.example/oauth/token" },
      ],
      ["a trailing-dot host", { tokenUrl: "https://auth.acme.example./oauth/token" }],
      ["a sibling subdomain", { tokenUrl: "https://auth.acme.example.evil.example/oauth/token" }],
      ["an IPv6 literal", { tokenUrl: "https://[::1]:8443/oauth/token" }],
      ["an IPv4 spelled as a number", { tokenUrl: "https://2130706433/oauth/token" }],
      ["the revocation endpoint", { revocationUrl: "https://evil.example/revoke" }],
      ["a new authorization endpoint", { authorizationUrl: "https://evil.example/authorize" }],
      ["a module refresh hook", { refreshHook: "./evil-hook.mjs" }],
      ["a URL refresh hook", { refreshHook: "https://evil.example/hook" }],
      ["a proxy", { proxyUrl: "http://evil.example:3128" }],
      ["TLS checks turned off", { tls: { mode: "off" } }],
      ["another trusted CA", { tls: { mode: "trust", ca: CERT_PEM } }],
    ];

    it.each(moves)(
      "refuses a move to %s unless the secret is sent again",
      async (_what, change) => {
        const error = await caught(() => tw.putIntegration({ ...base, ...change }));
        expect(error).toMatchObject({ code: "invalid_config", field: "clientSecret" });
        expect(String(error.message)).not.toContain("dst-secret-1");
        expect(JSON.stringify(error)).not.toContain("dst-secret-1");
        const kept = (await storeOf(tw).getIntegration("dst"))?.integration;
        expect(kept?.tokenUrl).toBe(base.tokenUrl);
        expect(kept?.clientSecret).toBe("dst-secret-1");
        // With the secret carried again, the same change is accepted; then put back.
        await tw.putIntegration({ ...base, ...change, clientSecret: "dst-secret-2" });
        expect((await storeOf(tw).getIntegration("dst"))?.integration.clientSecret).toBe(
          "dst-secret-2",
        );
        await tw.putIntegration({ ...base, clientSecret: "dst-secret-1" });
      },
    );

    it("lets the same origin be spelled another way, and paths move freely", async () => {
      for (const tokenUrl of [
        "https://AUTH.ACME.EXAMPLE/oauth/token",
        "https://auth.acme.example:443/oauth/token",
        "https://auth%2Eacme.example/other/path",
        "https://auth.acme.example/oauth/revoke?x=1",
      ]) {
        await tw.putIntegration({ ...base, tokenUrl });
        expect((await storeOf(tw).getIntegration("dst"))?.integration.clientSecret).toBe(
          "dst-secret-1",
        );
      }
      await tw.putIntegration(base);
    });

    it("names tls.key too: both secrets must come again", async () => {
      await tw.putIntegration(mtls("both", "TLSKEYMARKER0004"));
      const error = await caught(() =>
        tw.putIntegration({
          ...mtls("both", "x"),
          tls: { cert: CERT_PEM },
          clientSecret: "again",
          tokenUrl: "https://evil.example/t",
        }),
      );
      expect(error).toMatchObject({ code: "invalid_config", field: "tls.key" });
      expect(JSON.stringify(error)).not.toContain("TLSKEYMARKER0004");
      // Removing a secret is not sending it anywhere.
      await tw.putIntegration({
        ...mtls("both", "x"),
        clientSecret: null,
        tls: { key: null },
        tokenUrl: "https://evil.example/t",
      });
      expect((await storeOf(tw).getIntegration("both"))?.integration.clientSecret).toBeUndefined();
    });

    it("compares templated hosts by their authority template", async () => {
      const tenant = {
        key: "tenant",
        grantType: "client_credentials",
        tokenUrl: "https://{tenant}.auth.example/oauth/token",
        parameters: ["tenant"],
        clientId: "app",
        clientSecret: "tenant-secret",
      };
      await tw.putIntegration(tenant);
      const { clientSecret: _s, ...withoutSecret } = tenant;
      await tw.putIntegration({
        ...withoutSecret,
        tokenUrl: "https://{tenant}.auth.example/v2/token",
      });
      for (const tokenUrl of [
        "https://{tenant}.evil.example/oauth/token",
        "https://{tenant}/oauth/token",
        "https://auth.example/{tenant}/token",
      ]) {
        const error = await caught(() => tw.putIntegration({ ...withoutSecret, tokenUrl }));
        expect(error).toMatchObject({ code: "invalid_config", field: "clientSecret" });
      }
    });
  });

  describe("connections", () => {
    const regional = {
      key: "regional",
      grantType: "password",
      tokenUrl: "https://{region}.crm.example/oauth/token",
      parameters: ["region"],
      clientId: "app",
    };
    beforeAll(async () => {
      await tw.putIntegration(regional);
      await tw.putIntegration({
        ...regional,
        key: "elsewhere",
        tokenUrl: "https://{region}.other.example/token",
      });
    });

    it("refuses a parameter that moves the host while the password is kept; forgets the token when sent again", async () => {
      await tw.putConnection({
        id: "pw-1",
        integration: "regional",
        parameters: { region: "eu" },
        username: "u",
        password: "pw-secret-1",
      });
      await storeOf(tw).updateState("pw-1", { token: tokenSet(), status: "active" }, Date.now());
      for (const region of ["evil.example#", "us", "eu.evil.example", "EU.evil"]) {
        const error = await caught(() =>
          tw.putConnection({
            id: "pw-1",
            integration: "regional",
            parameters: { region },
            username: "u",
          }),
        );
        expect(error).toMatchObject({ code: "invalid_config" });
        if (error.field !== undefined && !String(error.field).startsWith("parameters")) {
          expect(error.field).toBe("password");
        }
        expect(JSON.stringify(error)).not.toContain("pw-secret-1");
      }
      const unchanged = await storeOf(tw).getConnection("pw-1");
      expect(unchanged?.connection.parameters.region).toBe("eu");
      expect(unchanged?.token).toBeDefined();
      // The same region, spelled the same: nothing moves, the token stays.
      await tw.putConnection({
        id: "pw-1",
        integration: "regional",
        parameters: { region: "eu" },
        username: "u",
      });
      expect((await storeOf(tw).getConnection("pw-1"))?.token).toBeDefined();
      // Sent again: accepted, and the token set from the old host is forgotten.
      await tw.putConnection({
        id: "pw-1",
        integration: "regional",
        parameters: { region: "us" },
        username: "u",
        password: "pw-secret-2",
      });
      const moved = await storeOf(tw).getConnection("pw-1");
      expect(moved?.token).toBeUndefined();
      expect(moved?.connection.password).toBe("pw-secret-2");
    });

    it("refuses a move to another integration while secrets are kept", async () => {
      await tw.putConnection({
        id: "pw-2",
        integration: "regional",
        parameters: { region: "eu" },
        username: "u",
        password: "pw-secret-3",
      });
      const error = await caught(() =>
        tw.putConnection({
          id: "pw-2",
          integration: "elsewhere",
          parameters: { region: "eu" },
          username: "u",
        }),
      );
      expect(error).toMatchObject({ code: "invalid_config", field: "password" });
      expect((await storeOf(tw).getConnection("pw-2"))?.connection.integration).toBe("regional");
    });

    it("an integration move forgets its connections' tokens and refuses their kept secrets by name", async () => {
      const ac = {
        key: "ac",
        grantType: "authorization_code",
        authorizationUrl: "https://id.acme.example/authorize",
        tokenUrl: "https://id.acme.example/token",
        clientId: "app",
      };
      await tw.putIntegration(ac);
      await tw.putConnection({ id: "ac-1", integration: "ac" });
      await storeOf(tw).updateState("ac-1", { token: tokenSet(), status: "active" }, Date.now());
      await tw.putConnection({
        id: "ac-2",
        integration: "ac",
        clientSecret: "per-connection-secret",
      });
      const refused = await caught(() =>
        tw.putIntegration({ ...ac, tokenUrl: "https://evil.example/token" }),
      );
      expect(refused).toMatchObject({
        code: "invalid_config",
        field: "connections.ac-2.clientSecret",
      });
      expect(JSON.stringify(refused)).not.toContain("per-connection-secret");
      // Nothing changed: the refusal came before any write.
      expect((await storeOf(tw).getConnection("ac-1"))?.token).toBeDefined();
      expect((await storeOf(tw).getIntegration("ac"))?.integration.tokenUrl).toBe(ac.tokenUrl);

      await tw.putConnection({ id: "ac-2", integration: "ac", clientSecret: null });
      await tw.putIntegration({ ...ac, tokenUrl: "https://login.acme.example/token" });
      const forgotten = await tw.getConnection("ac-1");
      expect((await storeOf(tw).getConnection("ac-1"))?.token).toBeUndefined();
      expect(forgotten.status).toBe("needs_reauth");
      expect(forgotten.lastError?.message).toContain("https://login.acme.example:443");
    });
  });
});

describe("tls.key through the service", () => {
  let db: TestDatabase;
  let service: TestService;
  beforeAll(async () => {
    db = await sqliteDatabase();
    service = await startTestService(db, newKey());
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
  });

  it("is accepted on PUT and never returned by GET, list or the PUT's answer", async () => {
    const marker = "SERVICETLSKEY0005";
    const body = {
      grantType: "client_credentials",
      tokenUrl: "https://auth.acme.example/oauth/token",
      clientId: "app",
      tls: { cert: CERT_PEM, key: privateKeyPem(marker) },
    };
    const put = await service.call("PUT", "/v1/integrations/svc", body);
    expect(put.status).toBe(201);
    expect(put.json.tls.key).toEqual({ set: true });
    for (const path of ["/v1/integrations/svc", "/v1/integrations", "/openapi.json"]) {
      const got = await service.call("GET", path);
      expect(got.status).toBe(200);
      expect(got.text).not.toContain(marker);
    }
    // The GET answer sent back as it is keeps the key.
    const view = (await service.call("GET", "/v1/integrations/svc")).json;
    const again = await service.call("PUT", "/v1/integrations/svc", {
      ...view,
      createdAt: undefined,
      updatedAt: undefined,
    });
    expect(again.status).toBe(200);
    expect(again.json.tls.key).toEqual({ set: true });
    // Moving the token URL without the key is refused, naming it.
    const moved = await service.call("PUT", "/v1/integrations/svc", {
      ...body,
      tls: { cert: CERT_PEM },
      tokenUrl: "https://evil.example/t",
    });
    expect(moved.status).toBe(400);
    expect(moved.json.error).toMatchObject({ code: "invalid_config", field: "tls.key" });
    expect(moved.text).toContain("tls.key");
    expect(moved.text).not.toContain(marker);
  });
});
