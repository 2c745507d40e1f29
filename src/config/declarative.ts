import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { CONNECTION_SECRET_FIELDS, parseConnection } from "../core/connection.js";
import { invalidConfig, TokenwardenError } from "../core/errors.js";
import { parseIntegration } from "../core/integration.js";

/**
 * `tokenwarden.yaml` (or `.json`): integrations and connections upserted before a
 * command runs. Any string may be `${ENV_VAR}`; a missing variable or an unknown field
 * is an error naming it. Everything is validated first, then written in one
 * transaction: a file refused as a whole (an entry invalid against its integration, a
 * secret sent to a new destination without being sent again, a database error
 * midway) changes nothing.
 */
export interface DeclarativeConfig {
  integrations: unknown[];
  connections: unknown[];
}

export function parseDeclarative(
  text: string,
  source: string,
  env: NodeJS.ProcessEnv = process.env,
): DeclarativeConfig {
  let doc: unknown;
  try {
    doc = extname(source).toLowerCase() === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw invalidConfig(
      source,
      `cannot be read: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (doc === null || doc === undefined) return { integrations: [], connections: [] };
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw invalidConfig(source, "must hold an object with integrations and connections");
  }
  for (const key of Object.keys(doc)) {
    if (key !== "integrations" && key !== "connections")
      throw invalidConfig(key, `unknown field in ${source}`);
  }
  const substituted = substituteEnv(doc, env, "") as {
    integrations?: unknown;
    connections?: unknown;
  };
  const list = (name: "integrations" | "connections"): unknown[] => {
    const value = substituted[name] ?? [];
    if (!Array.isArray(value)) throw invalidConfig(name, "must be a list");
    return value;
  };
  return { integrations: list("integrations"), connections: list("connections") };
}

/** Replaces `${NAME}` in every string; `$${` writes a literal `${`. */
function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, path: string): unknown {
  if (typeof value === "string") {
    return value.replace(
      /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g,
      (_whole, name: string | undefined) => {
        if (name === undefined) return "${";
        const found = env[name];
        if (found === undefined)
          throw invalidConfig(path, `uses \${${name}}, which is not set in the environment`);
        return found;
      },
    );
  }
  if (Array.isArray(value))
    return value.map((item, i) => substituteEnv(item, env, `${path}[${i}]`));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        substituteEnv(v, env, path === "" ? k : `${path}.${k}`),
      ]),
    );
  }
  return value;
}

export async function loadDeclarativeFile(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<DeclarativeConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw invalidConfig(
      "config",
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  return parseDeclarative(text, path, env);
}

/** Validates every entry (naming it in errors), then upserts them in order, in one transaction. */
export async function applyDeclarative(
  tw: Tokenwarden,
  config: DeclarativeConfig,
): Promise<{ integrations: number; connections: number }> {
  for (const [i, item] of config.integrations.entries()) {
    located(`integrations[${i}]`, () => parseIntegration(item));
  }
  for (const [i, item] of config.connections.entries()) {
    located(`connections[${i}]`, () => parseConnection(item));
  }
  // An integration moving to a new destination may keep its connections' secrets when
  // this file sends them again: they are written later in the same transaction.
  const resentConnectionSecrets = new Map<string, Set<string>>();
  for (const item of config.connections as Array<Record<string, unknown>>) {
    const fields = CONNECTION_SECRET_FIELDS.filter((f) => typeof item[f] === "string");
    if (typeof item.id === "string") resentConnectionSecrets.set(item.id, new Set(fields));
  }
  return tw.writeCatalogue(async (catalogue) => {
    for (const [i, item] of config.integrations.entries()) {
      await located(`integrations[${i}]`, () =>
        catalogue.putIntegration(item, { resentConnectionSecrets }),
      );
    }
    for (const [i, item] of config.connections.entries()) {
      await located(`connections[${i}]`, () => catalogue.putConnection(item));
    }
    return { integrations: config.integrations.length, connections: config.connections.length };
  });
}

function located<T>(where: string, fn: () => T): T {
  try {
    const result = fn();
    if (result instanceof Promise) {
      return result.catch((error: unknown) => {
        throw relocate(where, error);
      }) as T;
    }
    return result;
  } catch (error) {
    throw relocate(where, error);
  }
}

function relocate(where: string, error: unknown): unknown {
  if (!(error instanceof TokenwardenError) || error.code !== "invalid_config") return error;
  const field = error.field === undefined ? where : `${where}.${error.field}`;
  const message =
    error.field !== undefined && error.message.startsWith(`${error.field}:`)
      ? `${where}.${error.message}`
      : `${where}: ${error.message}`;
  return new TokenwardenError("invalid_config", message, {
    field,
    ...(error.issues === undefined
      ? {}
      : { issues: error.issues.map((issue) => ({ ...issue, field: `${where}.${issue.field}` })) }),
  });
}
