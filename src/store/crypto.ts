/**
 * Encryption at rest: AES-256-GCM under the master key. Each sealed value carries the
 * id of the key that sealed it, so a later key rotation can open old values with the
 * old key while sealing new ones with the new. The associated data binds a value to
 * where it is stored (`connection:acme-prod:refreshToken`), so a sealed value copied
 * into another row or column does not open.
 *
 * Format: `tw1.<key id>.<iv>.<tag>.<ciphertext>`, base64url parts.
 *
 * A value that does not open at run time (unknown key, tampered, moved) is a
 * `storage_error`: the configuration was accepted at start (master-key.ts checks the
 * key ids in use), so what failed is the stored data, not the caller's input.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { chmod, link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { invalidConfig, TokenwardenError } from "../core/errors.js";

const FORMAT = "tw1";
const IV_BYTES = 12;
/** IVs drawn from the CSPRNG at once: one call per 256 seals rather than one per seal. */
const IVS_PER_DRAW = 256;

export class Sealer {
  readonly #keys: Map<string, Buffer>;
  readonly #currentId: string;
  /** Random IVs not handed out yet: `#ivs` from `#ivAt` on. Each draw is a new buffer. */
  #ivs = Buffer.alloc(0);
  #ivAt = 0;

  /** `keys[0]` seals; every key opens what it sealed. */
  constructor(keys: readonly Buffer[]) {
    if (keys.length === 0) throw new Error("a Sealer needs at least one key");
    this.#keys = new Map();
    for (const key of keys) {
      if (key.length !== 32)
        throw invalidConfig("TOKENWARDEN_SECRET_KEY", "must be 32 bytes, base64");
      this.#keys.set(keyId(key), key);
    }
    this.#currentId = keyId(keys[0] as Buffer);
  }

  get currentKeyId(): string {
    return this.#currentId;
  }

  /** Ids of every configured key: the current one and the previous ones. */
  get keyIds(): ReadonlySet<string> {
    return new Set(this.#keys.keys());
  }

  seal(plaintext: string, context: string): string {
    const iv = this.#nextIv();
    const cipher = createCipheriv("aes-256-gcm", this.#keys.get(this.#currentId) as Buffer, iv);
    cipher.setAAD(Buffer.from(context, "utf8"));
    const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return [FORMAT, this.#currentId, b64(iv), b64(cipher.getAuthTag()), b64(ciphertext)].join(".");
  }

  /** A fresh random IV: every one is handed out once, and a draw is never overwritten. */
  #nextIv(): Buffer {
    if (this.#ivAt + IV_BYTES > this.#ivs.length) {
      this.#ivs = randomBytes(IV_BYTES * IVS_PER_DRAW);
      this.#ivAt = 0;
    }
    const iv = this.#ivs.subarray(this.#ivAt, this.#ivAt + IV_BYTES);
    this.#ivAt += IV_BYTES;
    return iv;
  }

  open(sealed: string, context: string): string {
    const [format, id, iv, tag, ciphertext] = sealed.split(".");
    if (
      format !== FORMAT ||
      id === undefined ||
      iv === undefined ||
      tag === undefined ||
      ciphertext === undefined
    ) {
      throw new TokenwardenError(
        "storage_error",
        `a stored secret (${context}) is not in a known format`,
      );
    }
    const key = this.#keys.get(id);
    if (key === undefined) {
      throw new TokenwardenError(
        "storage_error",
        `a stored secret (${context}) was sealed with key ${id}, which is not configured`,
      );
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
      decipher.setAAD(Buffer.from(context, "utf8"));
      decipher.setAuthTag(Buffer.from(tag, "base64url"));
      return Buffer.concat([
        decipher.update(Buffer.from(ciphertext, "base64url")),
        decipher.final(),
      ]).toString("utf8");
    } catch (error) {
      throw new TokenwardenError(
        "storage_error",
        `a stored secret (${context}) failed authentication`,
        {
          cause: error,
        },
      );
    }
  }

  sealOptional(plaintext: string | undefined, context: string): string | null {
    return plaintext === undefined ? null : this.seal(plaintext, context);
  }

  openOptional(sealed: string | null, context: string): string | undefined {
    return sealed === null ? undefined : this.open(sealed, context);
  }
}

/** A short public fingerprint of a key: safe to store and log. */
export function keyId(key: Buffer): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 12);
}

export function parseMasterKey(encoded: string, field = "TOKENWARDEN_SECRET_KEY"): Buffer {
  const key = Buffer.from(encoded.trim(), "base64");
  if (key.length !== 32)
    throw invalidConfig(field, `must be 32 bytes in base64 (got ${key.length} bytes)`);
  return key;
}

/** The id of the key a sealed value names, without opening it. */
export function sealedKeyId(sealed: string): string | undefined {
  const [format, id] = sealed.split(".", 2);
  return format === FORMAT && id !== undefined && id !== "" ? id : undefined;
}

/**
 * Reads the key file beside a SQLite database, or `undefined` when there is none. A
 * file left readable by others (an older version, a copy) is made private again.
 */
export async function readKeyFile(path: string): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  await makePrivate(path);
  return parseMasterKey(text, path);
}

/**
 * The embedded default's key file: created on first run with mode 0600 beside the
 * database, read on every later run. The key is written to a private temporary file
 * and then hard-linked into place, which fails if the file exists: two processes
 * starting together agree on one complete key, never a half-written one.
 */
export async function loadOrCreateKeyFile(path: string): Promise<Buffer> {
  const existing = await readKeyFile(path);
  if (existing !== undefined) return existing;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(temporary, `${generateMasterKey()}\n`, { mode: 0o600, flag: "wx" });
  try {
    // The mode given to open() is narrowed by the umask, never widened; chmod makes
    // it exactly 0600 whatever the umask was.
    await chmod(temporary, 0o600);
    await link(temporary, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    await unlink(temporary);
  }
  return parseMasterKey(await readFile(path, "utf8"), path);
}

/** A new random master key, base64 (`tokenwarden key generate`). */
export function generateMasterKey(): string {
  return randomBytes(32).toString("base64");
}

async function makePrivate(path: string): Promise<void> {
  try {
    await chmod(path, 0o600);
  } catch (error) {
    // Not ours to change (another user's file, read-only mount): reading it is enough.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EPERM" && code !== "EROFS") throw error;
  }
}

function b64(buf: Buffer): string {
  return buf.toString("base64url");
}
