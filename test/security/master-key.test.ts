import { existsSync } from "node:fs";
import { rm, stat, writeFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Tokenwarden } from "../../src/broker/tokenwarden.js";
import { keyId, Sealer } from "../../src/store/crypto.js";
import { openBrokerWithStore, storeOf } from "../fixtures/broker.js";
import { runCli } from "../fixtures/cli.js";
import { describeEachDriver, sqliteDatabase, type TestDatabase } from "../fixtures/databases.js";
import { startWebhookReceiver, type WebhookReceiver } from "../fixtures/webhook-receiver.js";
import { caught } from "../helpers.js";
import { newKey, openTw, rawQuery, startTestService, tokenSet } from "./support.js";

/** PRODUCT.md security rule 8: the master key is checked; previous keys; rotation. */
const idOf = (key: string) => keyId(Buffer.from(key, "base64"));

/** Runs `fn` with the environment changed, then puts it back. */
async function withEnv<T>(
  vars: Record<string, string | undefined>,
  fn: () => Promise<T>,
): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const NO_ENV_KEYS = {
  TOKENWARDEN_SECRET_KEY: undefined,
  TOKENWARDEN_PREVIOUS_SECRET_KEYS: undefined,
};

async function fill(tw: Tokenwarden): Promise<void> {
  await tw.putIntegration({
    key: "acme",
    grantType: "password",
    tokenUrl: "https://auth.acme.example/token",
    clientId: "app",
    clientSecret: "integration-secret",
  });
  await tw.putConnection({ id: "c1", integration: "acme", username: "u", password: "pw-1" });
  await storeOf(tw).updateState("c1", { token: tokenSet({ refreshToken: "rt-1" }) }, Date.now());
  await storeOf(tw).putPendingAuthorization({
    state: "state-1",
    connectionId: "c1",
    codeVerifier: "verifier-1",
    redirectUri: "http://127.0.0.1/cb",
    expiresAt: Date.now() + 600_000,
  });
  await storeOf(tw).putDeviceAuthorization({
    connectionId: "c1",
    flowId: "flow-1",
    deviceCode: "device-code-1",
    expiresAt: Date.now() + 600_000,
    intervalMs: 5000,
    nextPollAt: Date.now() + 5000,
  });
}

async function expectReadable(tw: Tokenwarden): Promise<void> {
  expect((await storeOf(tw).getIntegration("acme"))?.integration.clientSecret).toBe(
    "integration-secret",
  );
  const c1 = await storeOf(tw).getConnection("c1");
  expect(c1?.connection.password).toBe("pw-1");
  expect(c1?.token?.refreshToken).toBe("rt-1");
}

await describeEachDriver("the master key on $name", ({ create }) => {
  let db: TestDatabase;
  const keyA = newKey();
  const keyB = newKey();
  beforeAll(async () => {
    db = await create();
  });
  afterAll(async () => {
    await db.drop();
  });

  it("refuses a wrong key at open, naming the key id it needs; previous keys open; rotation re-seals all", async () => {
    const first = await openTw(db, keyA);
    await fill(first);
    await first.close();

    for (const wrong of [keyB, newKey()]) {
      const error = await caught(() => openTw(db, wrong));
      expect(error).toMatchObject({ code: "invalid_config" });
      expect(error.message).toContain(idOf(keyA));
      expect(error.message).not.toContain(keyA);
    }
    // A wrong previous key does not help either.
    expect(await caught(() => openTw(db, keyB, { previousSecretKeys: [newKey()] }))).toMatchObject({
      code: "invalid_config",
    });

    const rotating = await openTw(db, keyB, { previousSecretKeys: [keyA] });
    await expectReadable(rotating);
    const report = await rotating.rotateKeys();
    expect(report).toEqual({
      keyId: idOf(keyB),
      integrations: 1,
      connectionSecrets: 1,
      tokens: 1,
      pendingAuthorizations: 1,
      deviceAuthorizations: 1,
      webhookSecrets: 0,
      mcpClientSecrets: 0,
    });
    await rotating.close();

    const rows = await rawQuery(db, "select sealed_secrets, sealed_token from tw_connections");
    for (const row of rows) {
      expect(String(row.sealed_secrets)).toContain(`tw1.${idOf(keyB)}.`);
      expect(String(row.sealed_token)).toContain(`tw1.${idOf(keyB)}.`);
    }

    // The old key can go: the new one alone opens everything, the pending verifier too.
    const rotated = await openTw(db, keyB);
    await expectReadable(rotated);
    expect(
      (await storeOf(rotated).takePendingAuthorization("state-1", Date.now()))?.codeVerifier,
    ).toBe("verifier-1");
    expect((await storeOf(rotated).getDeviceAuthorization("c1"))?.deviceCode).toBe("device-code-1");
    await rotated.close();
    const error = await caught(() => openTw(db, keyA));
    expect(error.message).toContain(idOf(keyB));
  });

  it("Tokenwarden.open reads TOKENWARDEN_SECRET_KEY and TOKENWARDEN_PREVIOUS_SECRET_KEYS when no secretKey is given", async () => {
    const keyC = newKey();
    await withEnv(
      {
        TOKENWARDEN_SECRET_KEY: ` ${keyC} `,
        TOKENWARDEN_PREVIOUS_SECRET_KEYS: `${newKey()}, ${keyB} ,`,
      },
      async () => {
        const tw = await openBrokerWithStore({ database: db.url, scheduler: false });
        try {
          await expectReadable(tw);
          expect((await tw.rotateKeys()).keyId).toBe(idOf(keyC));
        } finally {
          await tw.close();
        }
      },
    );
    await withEnv(
      { TOKENWARDEN_SECRET_KEY: keyB, TOKENWARDEN_PREVIOUS_SECRET_KEYS: undefined },
      async () => {
        const error = await caught(() => Tokenwarden.open({ database: db.url, scheduler: false }));
        expect(error.message).toContain(idOf(keyC));
      },
    );
    // An explicit option wins over the environment.
    await withEnv({ TOKENWARDEN_SECRET_KEY: keyB }, async () => {
      const tw = await openBrokerWithStore({ database: db.url, secretKey: keyC, scheduler: false });
      await expectReadable(tw);
      await tw.close();
    });
  });

  it("finds the key ids of a database sealed before key ids were recorded", async () => {
    const legacy = await create();
    try {
      const tw = await openTw(legacy, keyA);
      await tw.putIntegration({
        key: "old",
        grantType: "client_credentials",
        tokenUrl: "https://a.example/t",
        clientId: "app",
      });
      await tw.putConnection({ id: "o1", integration: "old", clientSecret: "conn-secret" });
      await tw.close();
      // Back to what migration 0003 left: no key id table, the client secret sealed alone.
      const sealed = new Sealer([Buffer.from(keyA, "base64")]).seal(
        "legacy-secret",
        "integration:old:clientSecret",
      );
      await rawQuery(legacy, "update tw_integrations set sealed_client_secret = $1", [sealed]);
      await rawQuery(legacy, "alter table tw_integrations drop column sealed_secrets");
      await rawQuery(legacy, "drop table tw_sealing_keys");
      await rawQuery(legacy, "delete from tw_migrations where name like '0004%'");

      const error = await caught(() => openTw(legacy, keyB));
      expect(error.message).toContain(idOf(keyA));
      const reopened = await openTw(legacy, keyA);
      expect((await storeOf(reopened).getIntegration("old"))?.integration.clientSecret).toBe(
        "legacy-secret",
      );
      expect((await storeOf(reopened).getConnection("o1"))?.connection.clientSecret).toBe(
        "conn-secret",
      );
      await reopened.close();
      const [row] = await rawQuery(
        legacy,
        "select sealed_client_secret, sealed_secrets from tw_integrations",
      );
      expect(row?.sealed_client_secret).toBeNull();
      expect(String(row?.sealed_secrets)).toMatch(/^tw1\./);
    } finally {
      await legacy.drop();
    }
  });

  it("answers storage_error, not invalid_config, for a stored secret that does not open", async () => {
    const own = await create();
    try {
      const tw = await openTw(own, keyA);
      await fill(tw);
      await tw.putConnection({ id: "c2", integration: "acme", username: "u", password: "pw-2" });
      // A sealed value copied into another row does not open there.
      const [c1] = await rawQuery(own, "select sealed_token from tw_connections where id = 'c1'");
      await rawQuery(own, "update tw_connections set sealed_token = $1 where id = 'c2'", [
        c1?.sealed_token,
      ]);
      expect(await caught(() => storeOf(tw).getConnection("c2"))).toMatchObject({
        code: "storage_error",
      });
      expect(await caught(() => tw.getToken("c2"))).toMatchObject({ code: "storage_error" });
      await tw.close();
    } finally {
      await own.drop();
    }
  });
});

describe("the SQLite key file", () => {
  it("is created for a new database only, 0600; a database with sealed values never gets a new one", async () => {
    const db = await sqliteDatabase();
    const path = db.url.slice("sqlite:".length);
    try {
      await withEnv(NO_ENV_KEYS, async () => {
        const tw = await openBrokerWithStore({ database: db.url, scheduler: false });
        await fill(tw);
        await tw.close();
        expect((await stat(`${path}.key`)).mode & 0o777).toBe(0o600);

        const original = (await import("node:fs/promises")).readFile(`${path}.key`, "utf8");
        const originalKey = (await original).trim();
        await rm(`${path}.key`);
        const error = await caught(() => Tokenwarden.open({ database: db.url, scheduler: false }));
        expect(error).toMatchObject({ code: "invalid_config" });
        expect(error.message).toContain(idOf(originalKey));
        expect(existsSync(`${path}.key`)).toBe(false);

        // Another key file in its place is a wrong key like any other.
        await writeFile(`${path}.key`, `${newKey()}\n`, { mode: 0o600 });
        expect(
          (await caught(() => Tokenwarden.open({ database: db.url, scheduler: false }))).message,
        ).toContain(idOf(originalKey));
        await writeFile(`${path}.key`, `${originalKey}\n`, { mode: 0o644 });
        const tw2 = await openBrokerWithStore({ database: db.url, scheduler: false });
        await expectReadable(tw2);
        await tw2.close();
        // A key file left readable by others is made private again.
        expect((await stat(`${path}.key`)).mode & 0o777).toBe(0o600);
      });
    } finally {
      await db.drop();
    }
  });
});

describe("readiness and the command line", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await sqliteDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it("/readyz stops saying ready once values are sealed under a key this process lacks", async () => {
    const keyA = newKey();
    const keyB = newKey();
    const service = await startTestService(db, keyA);
    try {
      expect((await service.call("GET", "/readyz")).status).toBe(200);
      const put = await service.call("PUT", "/v1/integrations/acme", {
        grantType: "client_credentials",
        tokenUrl: "https://auth.acme.example/token",
        clientId: "app",
        clientSecret: "s",
      });
      expect(put.status).toBe(201);
      // Another process rotates to a key this one was not given.
      const other = await openTw(db, keyB, { previousSecretKeys: [keyA] });
      await other.rotateKeys();
      await other.close();
      const ready = await service.call("GET", "/readyz");
      expect(ready.status).toBe(503);
      expect(ready.json.status).not.toBe("ready");
      expect((await service.call("GET", "/v1/integrations/acme")).json.error?.code).toBe(
        "storage_error",
      );
    } finally {
      await service.close();
    }
    // And a service started with the old key does not start at all.
    expect((await caught(() => startTestService(db, keyA))).message).toContain(idOf(keyB));
  });

  it("key generate prints a new 32-byte key; key rotate re-seals and reports counts", async () => {
    const generated = await runCli(["key", "generate"]);
    expect(generated.code).toBe(0);
    const fresh = generated.stdout.trim();
    expect(Buffer.from(fresh, "base64")).toHaveLength(32);
    expect((await runCli(["key", "generate"])).stdout.trim()).not.toBe(fresh);

    const own = await sqliteDatabase();
    try {
      const old = newKey();
      const tw = await openTw(own, old);
      await fill(tw);
      await tw.close();
      const rotate = await runCli(["--database", own.url, "--json", "key", "rotate"], {
        env: { TOKENWARDEN_SECRET_KEY: fresh, TOKENWARDEN_PREVIOUS_SECRET_KEYS: old },
      });
      expect(rotate.stderr).toBe("");
      expect(JSON.parse(rotate.stdout)).toEqual({
        keyId: idOf(fresh),
        integrations: 1,
        connectionSecrets: 1,
        tokens: 1,
        pendingAuthorizations: 1,
        deviceAuthorizations: 1,
        webhookSecrets: 0,
        mcpClientSecrets: 0,
      });
      // Without --json: every count, each kind named, 0 included.
      const again = await runCli(["--database", own.url, "key", "rotate"], {
        env: { TOKENWARDEN_SECRET_KEY: fresh },
      });
      expect(again.stderr).toBe("");
      expect(again.stdout).toBe(
        [
          `re-sealed under key ${idOf(fresh)}:`,
          "  1 integrations",
          "  1 connection secret sets",
          "  1 token sets",
          "  1 pending authorizations (PKCE verifiers)",
          "  1 device authorizations (device codes)",
          "  0 webhook signing secrets",
          "  0 MCP client secrets",
          "",
        ].join("\n"),
      );
      const withOld = await runCli(["--database", own.url, "integration", "list"], {
        env: { TOKENWARDEN_SECRET_KEY: old },
      });
      expect(withOld.code).toBe(1);
      expect(withOld.stderr).toContain(`error invalid_config`);
      expect(withOld.stderr).toContain(idOf(fresh));
      expect(withOld.stderr).not.toContain(fresh);
      const withNew = await runCli(["--database", own.url, "integration", "list"], {
        env: { TOKENWARDEN_SECRET_KEY: fresh },
      });
      expect(withNew.code).toBe(0);
      expect(withNew.stdout).toContain("acme");
    } finally {
      await own.drop();
    }
  });
});

await describeEachDriver("an MCP server's registered client on $name", ({ create }) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await create();
  });
  afterAll(async () => {
    await db.drop();
  });

  it("its secret is sealed, re-sealed by rotation, and goes with its integration", async () => {
    const keyA = newKey();
    const keyB = newKey();
    const first = await openTw(db, keyA);
    await first.putIntegration({ key: "mcp", mcpServerUrl: "https://mcp.example.com/mcp" });
    const client = {
      issuer: "https://as.example.com",
      clientId: "registered-client",
      kind: "registered" as const,
      clientAuth: "basic",
      clientSecret: "registered-secret-0123456789",
      redirectUris: ["https://tw.example.com/oauth/callback"],
    };
    await storeOf(first).putMcpClient("mcp", client, Date.now());
    await first.close();
    const sealedUnder = async (key: string) => {
      const rows = await rawQuery(db, "select client_id, sealed_client_secret from tw_mcp_clients");
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(client.clientSecret);
      expect(String(rows[0]?.sealed_client_secret)).toContain(`tw1.${idOf(key)}.`);
    };
    await sealedUnder(keyA);
    // Sealed under keyA: another key alone does not open the database.
    expect((await caught(() => openTw(db, keyB))).code).toBe("invalid_config");

    const rotating = await openTw(db, keyB, { previousSecretKeys: [keyA] });
    expect(await rotating.rotateKeys()).toMatchObject({ mcpClientSecrets: 1 });
    await rotating.close();
    await sealedUnder(keyB);

    const rotated = await openTw(db, keyB);
    expect(await storeOf(rotated).getMcpClient("mcp")).toEqual(client);
    await rotated.deleteIntegration("mcp");
    expect(await rawQuery(db, "select integration from tw_mcp_clients")).toEqual([]);
    await rotated.close();
  });
});

await describeEachDriver("a webhook's signing secret on $name", ({ create }) => {
  let db: TestDatabase;
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    db = await create();
    receiver = await startWebhookReceiver();
  });
  afterAll(async () => {
    await receiver.close();
    await db.drop();
  });

  it("survives a rotation: a delivery signed after it verifies with the secret shown at creation", async () => {
    const keyA = newKey();
    const keyB = newKey();
    const first = await openTw(db, keyA, { webhooks: false });
    const { webhook } = await first.webhooks.put("ops", {
      url: receiver.url,
      events: ["connection.deleted"],
    });
    receiver.secret = webhook.secret as string;
    await first.putIntegration({
      key: "acme",
      grantType: "client_credentials",
      tokenUrl: "https://auth.acme.example/token",
      clientId: "app",
      clientSecret: "integration-secret",
    });
    await first.putConnection({ id: "c1", integration: "acme" });
    await first.close();
    const [before] = await rawQuery(db, "select sealed_secret from tw_webhooks");
    expect(String(before?.sealed_secret)).toContain(`tw1.${idOf(keyA)}.`);

    const rotating = await openTw(db, keyB, { previousSecretKeys: [keyA], webhooks: false });
    expect(await rotating.rotateKeys()).toMatchObject({ integrations: 1, webhookSecrets: 1 });
    await rotating.close();
    const [after] = await rawQuery(db, "select sealed_secret from tw_webhooks");
    expect(String(after?.sealed_secret)).toContain(`tw1.${idOf(keyB)}.`);

    // The old key is gone from the environment; the webhook signs with the same secret.
    const rotated = await openTw(db, keyB, { webhooks: false });
    await rotated.deleteConnection("c1");
    await rotated.deliverWebhooks();
    await rotated.close();
    expect(receiver.received.map((r) => [r.json.type, r.verified])).toEqual([
      ["connection.deleted", true],
    ]);
  });
});
