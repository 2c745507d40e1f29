/**
 * `tokenwarden.yaml` (or `.json`): integrations and connections upserted before a
 * command runs. Any string may be `${ENV_VAR}`; a missing variable or an unknown field
 * is an error naming it. This module only reads the file; the broker validates and
 * writes it, in one transaction (`tw.applyDeclarative`, broker/catalogue-import.ts).
 */
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { invalidConfig } from "../core/errors.js";

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
