import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runProcess } from "../fixtures/cli.js";

/**
 * PRODUCT.md security rule 9, checked in a child process whose umask is 0 (the worst
 * case: every file anyone creates is world-writable unless we say otherwise).
 */
const OPEN = resolve("dist/store/open.js");

/** Opens the store in a child with umask 0, writes a secret, and reports the modes while it is open. */
async function modesUnderUmaskZero(
  database: string,
  files: string[],
  env: Record<string, string> = {},
) {
  const script = `
    process.umask(0);
    const { openStore } = await import(${JSON.stringify(OPEN)});
    const { statSync } = await import("node:fs");
    const store = await openStore({ database: ${JSON.stringify(database)} });
    await store.putIntegration({ key: "k", grantType: "client_credentials", tokenUrl: "https://a.example/t",
      clientId: "app", clientSecret: "s", tokenMethod: "POST", clientAuth: "basic", scopes: [],
      scopeSeparator: " ", pkce: true, authorizationParams: {}, tokenParams: {}, refreshParams: {},
      tokenHeaders: {}, parameters: [], tokenPlacement: { in: "header", name: "Authorization", template: "Bearer {token}" },
      requestParams: { headers: {}, query: {} }, session: "auto", fixedTtlSeconds: 3600, refreshAheadSeconds: 60,
      retryOn: [401], tls: { mode: "verify" }, timeoutMs: 1000, responseMap: {} }, Date.now());
    const modes = {};
    for (const f of ${JSON.stringify(files)}) {
      try { modes[f] = (statSync(f).mode & 0o777).toString(8); } catch { modes[f] = "missing"; }
    }
    await store.close();
    process.stdout.write(JSON.stringify(modes));
  `;
  const result = await runProcess(process.execPath, ["--input-type=module", "-e", script], { env });
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout) as Record<string, string>;
}

describe("private files, whatever the umask", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "tokenwarden-files-"));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("creates the data folders 0700 and the database, its journals and the key file 0600", async () => {
    const data = join(root, "fresh", "nested", "data");
    const db = join(data, "tokenwarden.db");
    const modes = await modesUnderUmaskZero(`sqlite:${db}`, [
      join(root, "fresh"),
      join(root, "fresh", "nested"),
      data,
      db,
      `${db}-wal`,
      `${db}-shm`,
      `${db}.key`,
    ]);
    expect(modes).toEqual({
      [join(root, "fresh")]: "700",
      [join(root, "fresh", "nested")]: "700",
      [data]: "700",
      [db]: "600",
      [`${db}-wal`]: "600",
      [`${db}-shm`]: "600",
      [`${db}.key`]: "600",
    });
  });

  it("makes files an older version left readable private, and leaves folders it did not create alone", async () => {
    const data = join(root, "existing");
    await mkdir(data, { mode: 0o755 });
    const db = join(data, "tokenwarden.db");
    await writeFile(db, "", { mode: 0o644 });
    await writeFile(`${db}.key`, `${Buffer.alloc(32, 7).toString("base64")}\n`, { mode: 0o644 });
    const modes = await modesUnderUmaskZero(`sqlite:${db}`, [data, db, `${db}-wal`, `${db}.key`]);
    expect(modes).toEqual({
      [data]: "755",
      [db]: "600",
      [`${db}-wal`]: "600",
      [`${db}.key`]: "600",
    });
    expect((await stat(db)).mode & 0o777).toBe(0o600);
  });

  it("keeps the files private with an explicit key too (no key file then)", async () => {
    const db = join(root, "explicit", "tokenwarden.db");
    const modes = await modesUnderUmaskZero(
      `sqlite:${db}`,
      [join(root, "explicit"), db, `${db}-wal`, `${db}.key`],
      {
        TOKENWARDEN_SECRET_KEY: Buffer.alloc(32, 9).toString("base64"),
      },
    );
    expect(modes).toEqual({
      [join(root, "explicit")]: "700",
      [db]: "600",
      [`${db}-wal`]: "600",
      [`${db}.key`]: "missing",
    });
  });
});
