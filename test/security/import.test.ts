import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tokenwarden } from "../../src/broker/tokenwarden.js";
import { parseDeclarative } from "../../src/config/declarative.js";
import { storeOf } from "../fixtures/broker.js";
import { runCli } from "../fixtures/cli.js";
import {
  describeEachDriver,
  postgresDatabase as postgresDatabaseOnly,
  sqliteDatabase,
  type TestDatabase,
} from "../fixtures/databases.js";
import { caught } from "../helpers.js";
import { newKey, openTw, rawQuery, tokenSet } from "./support.js";

/**
 * An import file (`integration import`, `--config`) is written in one transaction: a
 * file refused as a whole leaves every row as it was.
 */
const ACME = {
  key: "acme",
  grantType: "password",
  tokenUrl: "https://auth.acme.example/oauth/token",
  parameters: ["tenant"],
  clientId: "app",
  clientSecret: "acme-secret",
  scopes: ["read"],
};

/** Every catalogue row, as a comparable snapshot. */
async function snapshot(db: TestDatabase): Promise<string> {
  const integrations = await rawQuery(
    db,
    "select key, document, updated_at from tw_integrations order by key",
  );
  const connections = await rawQuery(
    db,
    "select id, integration, document, status, token_version, updated_at from tw_connections order by id",
  );
  return JSON.stringify({ integrations, connections });
}

await describeEachDriver("atomic imports on $name", ({ create }) => {
  let db: TestDatabase;
  let tw: Tokenwarden;
  beforeAll(async () => {
    db = await create();
    tw = await openTw(db, newKey());
    await tw.putIntegration(ACME);
    await tw.putConnection({
      id: "c0",
      integration: "acme",
      parameters: { tenant: "t0" },
      username: "u",
      password: "p0",
    });
    await storeOf(tw).updateState("c0", { token: tokenSet() }, Date.now());
  });
  afterAll(async () => {
    await tw.close();
    await db.drop();
  });

  const refusedFiles: Array<[string, () => unknown, RegExp]> = [
    [
      "its second connection is invalid against its integration",
      () => ({
        integrations: [{ ...ACME, scopes: ["read", "write"] }],
        connections: [
          {
            id: "c1",
            integration: "acme",
            parameters: { tenant: "t1" },
            username: "u",
            password: "p1",
          },
          {
            id: "c2",
            integration: "acme",
            parameters: { tenant: "t2", extra: "x" },
            username: "u",
            password: "p2",
          },
        ],
      }),
      /connections\[1\]\.parameters\.extra/,
    ],
    [
      "its last connection names an integration that does not exist",
      () => ({
        integrations: [{ ...ACME, displayName: "changed" }],
        connections: [
          {
            id: "c0",
            integration: "acme",
            parameters: { tenant: "t0" },
            username: "u",
            password: "p9",
          },
          { id: "c3", integration: "missing", username: "u" },
        ],
      }),
      /connections\[1\]\.integration/,
    ],
    [
      "its integration moves the token URL without sending the secret again",
      () => ({
        integrations: [
          {
            key: "other",
            grantType: "client_credentials",
            tokenUrl: "https://o.example/t",
            clientId: "a",
          },
          { ...ACME, clientSecret: undefined, tokenUrl: "https://evil.example/oauth/token" },
        ],
        connections: [],
      }),
      /integrations\[1\]\.clientSecret/,
    ],
    [
      "its integration moves while a connection keeps a password the file does not send",
      () => ({
        integrations: [{ ...ACME, tokenUrl: "https://login.acme.example/oauth/token" }],
        connections: [
          {
            id: "c9",
            integration: "acme",
            parameters: { tenant: "t9" },
            username: "u",
            password: "p",
          },
        ],
      }),
      /connections\.c0\.password/,
    ],
  ];

  it.each(refusedFiles)("changes nothing when %s", async (_what, file, message) => {
    const before = await snapshot(db);
    const error = await caught(() => tw.applyDeclarative(file() as never));
    expect(error).toMatchObject({ code: "invalid_config" });
    expect(error.message).toMatch(message);
    expect(await snapshot(db)).toBe(before);
    expect((await storeOf(tw).getConnection("c0"))?.token).toBeDefined();
  });

  it("changes nothing when the database fails midway", async () => {
    // A trigger stands in for a failing disk or a dropped connection on the third write.
    if (db.url.startsWith("sqlite:")) {
      await rawQuery(
        db,
        "create trigger boom before insert on tw_connections when new.id = 'boom' begin select raise(abort, 'disk says no'); end",
      );
    } else {
      await rawQuery(
        db,
        `create function boom() returns trigger language plpgsql as $$
         begin if new.id = 'boom' then raise exception 'disk says no'; end if; return new; end $$`,
      );
      await rawQuery(
        db,
        "create trigger boom before insert on tw_connections for each row execute function boom()",
      );
    }
    const before = await snapshot(db);
    const error = await caught(() =>
      tw.applyDeclarative({
        integrations: [{ ...ACME, scopes: ["admin"] }],
        connections: [
          {
            id: "c5",
            integration: "acme",
            parameters: { tenant: "t5" },
            username: "u",
            password: "p5",
          },
          {
            id: "boom",
            integration: "acme",
            parameters: { tenant: "tb" },
            username: "u",
            password: "pb",
          },
        ],
      }),
    );
    expect(String(error.message)).toContain("disk says no");
    expect(await snapshot(db)).toBe(before);
    // The store is usable afterwards: nothing was left half-open.
    await tw.putConnection({
      id: "after",
      integration: "acme",
      parameters: { tenant: "ta" },
      username: "u",
      password: "pa",
    });
    await tw.deleteConnection("after");
  });

  it("writes a whole file, moving an integration whose connections it sends again with their secrets", async () => {
    const file = parseDeclarative(
      JSON.stringify({
        integrations: [
          {
            ...ACME,
            tokenUrl: "https://login.acme.example/oauth/token",
            clientSecret: "${NEW_SECRET}",
          },
        ],
        connections: [
          {
            id: "c0",
            integration: "acme",
            parameters: { tenant: "t0" },
            username: "u",
            password: "p0-new",
          },
        ],
      }),
      "file.json",
      { NEW_SECRET: "acme-secret-2" },
    );
    expect(await tw.applyDeclarative(file)).toEqual({ integrations: 1, connections: 1 });
    const c0 = await storeOf(tw).getConnection("c0");
    expect(c0?.connection.password).toBe("p0-new");
    expect(c0?.token).toBeUndefined(); // issued by the old server: never sent to the new one
    expect((await storeOf(tw).getIntegration("acme"))?.integration.clientSecret).toBe(
      "acme-secret-2",
    );
  });
});

describe("change notifications", () => {
  it("tell other processes of a committed import only, after it committed", async () => {
    const db = await postgresDatabaseOnly();
    const key = newKey();
    const writer = await openTw(db, key);
    const listener = await openTw(db, key);
    const heard: string[] = [];
    let resolveHeard: () => void = () => undefined;
    const heardOk = new Promise<void>((r) => {
      resolveHeard = r;
    });
    const unsubscribe = await storeOf(listener).subscribeChanges((topic) => {
      heard.push(topic.slice(topic.indexOf("|") + 1));
      if (topic.endsWith("connection:ok-1")) resolveHeard();
    });
    try {
      await writer.putIntegration({
        key: "n",
        grantType: "client_credentials",
        tokenUrl: "https://n.example/t",
        clientId: "a",
      });
      await caught(() =>
        writer.applyDeclarative({
          integrations: [],
          connections: [
            { id: "refused-1", integration: "n" },
            { id: "refused-2", integration: "n", parameters: { nope: "x" } },
          ],
        }),
      );
      await writer.applyDeclarative({
        integrations: [],
        connections: [{ id: "ok-1", integration: "n" }],
      });
      await heardOk;
      expect(heard.filter((t) => t.startsWith("connection:"))).toEqual(["connection:ok-1"]);
    } finally {
      await unsubscribe();
      await listener.close();
      await writer.close();
      await db.drop();
    }
  });
});

describe("integration import on the command line", () => {
  let dir: string;
  let db: TestDatabase;
  const key = newKey();
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tokenwarden-import-"));
    db = await sqliteDatabase();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await db.drop();
  });

  it("refuses a file whole, naming the entry, and leaves the database as it was", async () => {
    const env = { TOKENWARDEN_SECRET_KEY: key };
    const good = join(dir, "good.yaml");
    await writeFile(
      good,
      `integrations:
  - key: acme
    grantType: client_credentials
    tokenUrl: https://auth.acme.example/token
    clientId: app
connections:
  - id: acme-1
    integration: acme
`,
    );
    expect(
      (await runCli(["--database", db.url, "integration", "import", good], { env })).code,
    ).toBe(0);
    const before = await snapshot(db);
    const bad = join(dir, "bad.yaml");
    await writeFile(
      bad,
      `integrations:
  - key: acme
    grantType: client_credentials
    tokenUrl: https://auth.acme.example/token
    clientId: app
    scopes: [changed]
  - key: beta
    grantType: client_credentials
    tokenUrl: https://beta.example/token
    clientId: app
connections:
  - id: acme-2
    integration: acme
  - id: beta-1
    integration: beta
    parameters: { nope: "1" }
`,
    );
    const result = await runCli(["--database", db.url, "integration", "import", bad], { env });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("connections[1].parameters.nope");
    expect(await snapshot(db)).toBe(before);
    const listed = await runCli(["--database", db.url, "--json", "integration", "list"], { env });
    expect(JSON.parse(listed.stdout).map((i: { key: string }) => i.key)).toEqual(["acme"]);
  });
});
