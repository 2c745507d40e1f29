/**
 * The master key is checked (SECURITY.md). The database records the id
 * of every key that sealed a value in it (`tw_sealing_keys`), so a process started
 * with a wrong key refuses to open, naming the key ids it needs, instead of sealing
 * new values under a key that does not open the old ones. No key file is created
 * beside a SQLite database that already holds sealed values.
 */
import type { Kysely } from "kysely";
import { invalidConfig } from "../core/errors.js";
import { loadOrCreateKeyFile, parseMasterKey, readKeyFile, Sealer } from "./crypto.js";
import type { DatabaseLocation } from "./open.js";
import type { Database } from "./schema.js";

export interface MasterKeys {
  /** The key that seals (base64); undefined: the key file beside a SQLite database. */
  current: string | undefined;
  /** Older keys that still open values sealed before a rotation. */
  previous: string[];
}

/**
 * The keys to use: the options when `secretKey` is given, else the environment
 * (`TOKENWARDEN_SECRET_KEY`, `TOKENWARDEN_PREVIOUS_SECRET_KEYS` comma-separated), so the
 * library, the CLI and the service agree on one configuration.
 */
export function masterKeysFrom(
  options: { secretKey?: string; previousSecretKeys?: string[] },
  env: NodeJS.ProcessEnv = process.env,
): MasterKeys {
  if (options.secretKey !== undefined) {
    return { current: options.secretKey, previous: options.previousSecretKeys ?? [] };
  }
  const current = env.TOKENWARDEN_SECRET_KEY?.trim();
  return {
    current: current === undefined || current === "" ? undefined : current,
    previous: options.previousSecretKeys ?? splitKeyList(env.TOKENWARDEN_PREVIOUS_SECRET_KEYS),
  };
}

export function splitKeyList(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((k) => k.trim())
    .filter((k) => k !== "");
}

/** Ids of the keys values in this database are sealed under. */
export async function keyIdsInUse(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom("tw_sealing_keys").select("key_id").orderBy("key_id").execute();
  return rows.map((r) => r.key_id);
}

/** Notes that a value sealed under `keyId` is about to be written. */
export async function recordKeyId(db: Kysely<Database>, keyId: string): Promise<void> {
  await db
    .insertInto("tw_sealing_keys")
    .values({ key_id: keyId })
    .onConflict((oc) => oc.column("key_id").doNothing())
    .execute();
}

/** The key ids in use that `sealer` cannot open. */
export function missingKeyIds(inUse: readonly string[], sealer: Sealer): string[] {
  const configured = sealer.keyIds;
  return inUse.filter((id) => !configured.has(id));
}

/**
 * The sealer for a database whose sealed values use the key ids `inUse`: from the
 * configured keys, or the SQLite key file (created only for a database that holds no
 * sealed value yet). Refuses, naming the key ids, when one in use is not configured.
 */
export async function sealerFor(
  location: DatabaseLocation,
  keys: MasterKeys,
  inUse: readonly string[],
): Promise<Sealer> {
  const previous = keys.previous.map((k) => parseMasterKey(k, "TOKENWARDEN_PREVIOUS_SECRET_KEYS"));
  let current: Buffer;
  if (keys.current !== undefined) {
    current = parseMasterKey(keys.current);
  } else if (location.kind === "postgres") {
    throw invalidConfig("TOKENWARDEN_SECRET_KEY", "is required with PostgreSQL (32 bytes, base64)");
  } else if (location.path === ":memory:") {
    throw invalidConfig("TOKENWARDEN_SECRET_KEY", "is required for an in-memory database");
  } else {
    const keyFile = `${location.path}.key`;
    const existing = await readKeyFile(keyFile);
    if (existing === undefined && inUse.length > 0) {
      throw invalidConfig(
        "TOKENWARDEN_SECRET_KEY",
        `the database ${location.path} holds values sealed under key ${inUse.join(", ")} but its key file ${keyFile} is missing: restore that file or set TOKENWARDEN_SECRET_KEY to that key (no new key was created)`,
      );
    }
    current = existing ?? (await loadOrCreateKeyFile(keyFile));
  }
  const sealer = new Sealer([current, ...previous]);
  const missing = missingKeyIds(inUse, sealer);
  if (missing.length > 0) {
    throw invalidConfig(
      "TOKENWARDEN_SECRET_KEY",
      `the database holds values sealed under key ${missing.join(", ")}, which ${missing.length === 1 ? "is" : "are"} not configured (configured: ${[...sealer.keyIds].join(", ")}): set TOKENWARDEN_SECRET_KEY to that key, or add it to TOKENWARDEN_PREVIOUS_SECRET_KEYS`,
    );
  }
  return sealer;
}
