import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { keyId, loadOrCreateKeyFile, Sealer } from "../../src/store/crypto.js";

describe("sealing secrets at rest", () => {
  const key = randomBytes(32);

  it("round-trips, never repeats a ciphertext, and names its key", () => {
    const sealer = new Sealer([key]);
    const a = sealer.seal("s3cret", "connection:c1:secrets");
    const b = sealer.seal("s3cret", "connection:c1:secrets");
    expect(a).not.toBe(b);
    expect(a).not.toContain("s3cret");
    expect(a.split(".")[1]).toBe(keyId(key));
    expect(sealer.open(a, "connection:c1:secrets")).toBe("s3cret");
  });

  it("never hands out one IV twice, across the CSPRNG draws IVs are taken from", () => {
    const sealer = new Sealer([key]);
    // Over three draws of 256: every IV (the third part) differs, and every value opens.
    const sealed = Array.from({ length: 700 }, (_, i) => sealer.seal(`v${i}`, "ctx"));
    expect(new Set(sealed.map((s) => s.split(".")[2])).size).toBe(700);
    expect(sealed.map((s) => sealer.open(s, "ctx"))).toEqual(sealed.map((_, i) => `v${i}`));
  });

  it("refuses a value moved to another row, or tampered with", () => {
    const sealer = new Sealer([key]);
    const sealed = sealer.seal("s3cret", "connection:c1:secrets");
    expect(() => sealer.open(sealed, "connection:c2:secrets")).toThrow(/failed authentication/);
    const parts = sealed.split(".");
    parts[4] = Buffer.from("tampered").toString("base64url");
    expect(() => sealer.open(parts.join("."), "connection:c1:secrets")).toThrow(
      /failed authentication/,
    );
  });

  it("opens values sealed under a previous key after rotation, and seals under the new one", () => {
    const old = new Sealer([key]);
    const sealed = old.seal("kept", "x");
    const next = randomBytes(32);
    const rotated = new Sealer([next, key]);
    expect(rotated.open(sealed, "x")).toBe("kept");
    expect(rotated.seal("new", "x").split(".")[1]).toBe(keyId(next));
    expect(() => new Sealer([next]).open(sealed, "x")).toThrow(/not configured/);
  });

  it("creates the key file once, mode 0600, and agrees on it under a race", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tokenwarden-key-"));
    try {
      const path = join(dir, "nested", "db.key");
      const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateKeyFile(path)));
      expect(new Set(keys.map((k) => k.toString("hex"))).size).toBe(1);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect(Buffer.from((await readFile(path, "utf8")).trim(), "base64")).toHaveLength(32);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("rejects a master key that is not 32 bytes", () => {
    expect(() => new Sealer([randomBytes(16)])).toThrow(/32 bytes/);
  });
});
