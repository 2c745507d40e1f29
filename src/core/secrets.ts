/**
 * Which fields are secrets, and how a write-only secret travels through a PUT. A
 * secret is stored sealed and shown only as `{ set: true | false }`; a PUT that leaves
 * it out (or sends that flag back) keeps the stored value, `null` removes it, a string
 * replaces it. Paths are dotted (`tls.key`), so a nested private key is a secret too.
 */

/** Secrets of an integration: the client secret, the mutual-TLS private key, the signing key. */
export const INTEGRATION_SECRET_PATHS = ["clientSecret", "tls.key", "clientPrivateKey"] as const;

/** Secret values by path, e.g. `{ "tls.key": "-----BEGIN PRIVATE KEY-----..." }`. */
export type SecretValues = Record<string, string>;

export interface SecretInput {
  /** The input with kept secrets filled in and removed ones taken out: ready to validate. */
  value: unknown;
  /** Paths the input carried as a new value (a string). */
  resent: Set<string>;
  /** Paths the input set to `null`. */
  cleared: Set<string>;
}

/**
 * Merges what a PUT body says about each secret with what is stored. A nested secret
 * is kept only when its parent object is sent: leaving `tls` out altogether drops
 * mutual TLS, key included.
 */
export function mergeSecretInput(
  input: unknown,
  paths: readonly string[],
  stored: SecretValues,
): SecretInput {
  const resent = new Set<string>();
  const cleared = new Set<string>();
  if (!isPlainObject(input)) return { value: input, resent, cleared };
  const value = copyAlong(input, paths);
  for (const path of paths) {
    const { parent, leaf } = locate(value, path);
    if (parent === undefined) continue;
    const given = parent[leaf];
    if (typeof given === "string") {
      resent.add(path);
    } else if (given === null) {
      cleared.add(path);
      delete parent[leaf];
    } else if (given === undefined || isSetFlag(given)) {
      delete parent[leaf];
      const kept = stored[path];
      if (kept !== undefined) parent[leaf] = kept;
    }
    // Anything else is left for the schema to refuse, naming the field.
  }
  return { value, resent, cleared };
}

/** The secrets present in a value (strings only), by path. */
export function secretsOf(value: unknown, paths: readonly string[]): SecretValues {
  const out: SecretValues = {};
  for (const path of paths) {
    const found = readPath(value, path);
    if (typeof found === "string") out[path] = found;
  }
  return out;
}

/** A copy of `value` without the secrets. */
export function withoutSecrets<T>(value: T, paths: readonly string[]): T {
  if (!isPlainObject(value)) return value;
  const copy = copyAlong(value, paths);
  for (const path of paths) {
    const { parent, leaf } = locate(copy, path);
    if (parent !== undefined) delete parent[leaf];
  }
  return copy as T;
}

/** A copy of `value` with the secrets set (parent objects created when missing). */
export function withSecrets<T>(value: T, secrets: SecretValues): T {
  if (!isPlainObject(value)) return value;
  const paths = Object.keys(secrets);
  const copy = copyAlong(value, paths);
  for (const [path, secret] of Object.entries(secrets)) {
    const parts = path.split(".");
    let node: Record<string, unknown> = copy;
    for (const part of parts.slice(0, -1)) {
      if (!isPlainObject(node[part])) node[part] = {};
      node = node[part] as Record<string, unknown>;
    }
    node[parts[parts.length - 1] as string] = secret;
  }
  return copy as T;
}

/** Replaces each secret by `{ set }` for a view: present or not, never its value. */
export function secretFlags<T>(
  value: T,
  paths: readonly string[],
): T & Record<string, { set: boolean }> {
  if (!isPlainObject(value)) return value as T & Record<string, { set: boolean }>;
  const copy = copyAlong(value, paths);
  for (const path of paths) {
    const { parent, leaf } = locate(copy, path);
    if (parent !== undefined) parent[leaf] = { set: typeof parent[leaf] === "string" };
  }
  return copy as T & Record<string, { set: boolean }>;
}

export function readPath(value: unknown, path: string): unknown {
  let node: unknown = value;
  for (const part of path.split(".")) {
    if (!isPlainObject(node)) return undefined;
    node = node[part];
  }
  return node;
}

/** The object holding a path's last part, if every object above it exists. */
function locate(
  root: Record<string, unknown>,
  path: string,
): { parent: Record<string, unknown> | undefined; leaf: string } {
  const parts = path.split(".");
  let node: unknown = root;
  for (const part of parts.slice(0, -1)) {
    node = isPlainObject(node) ? node[part] : undefined;
  }
  return {
    parent: isPlainObject(node) ? node : undefined,
    leaf: parts[parts.length - 1] as string,
  };
}

/** A shallow copy of `root` and of every object on the way to each path: the input is never mutated. */
function copyAlong(
  root: Record<string, unknown>,
  paths: readonly string[],
): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...root };
  for (const path of paths) {
    let node = copy;
    for (const part of path.split(".").slice(0, -1)) {
      const child = node[part];
      if (!isPlainObject(child)) break;
      const childCopy = { ...child };
      node[part] = childCopy;
      node = childCopy;
    }
  }
  return copy;
}

function isSetFlag(value: unknown): boolean {
  return (
    isPlainObject(value) &&
    Object.keys(value).length === 1 &&
    typeof (value as { set?: unknown }).set === "boolean"
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
