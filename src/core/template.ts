/**
 * `{name}` templating (integration parameters). A placeholder is `{` + an
 * identifier + `}`; any other brace is literal text, so JSON or regular expressions in
 * a value pass through untouched. `{{` and `}}` write a literal brace where a literal
 * `{identifier}` is wanted. A name with no value is an error, never sent literally.
 */
import { invalidConfig } from "./errors.js";

const PLACEHOLDER = /\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_.-]*)\}/g;

/** The placeholder `{token}` stands for the access token in `tokenPlacement.template`. */
export const TOKEN_PLACEHOLDER = "token";

const TOKEN_MARK = `{${TOKEN_PLACEHOLDER}}`;

/** `tokenPlacement.template` with the access token in place of `{token}`. */
export function fillTokenTemplate(template: string, accessToken: string): string {
  // A function, not the token as a replacement string: a token may hold `$&` or `$$`
  // (RFC 6749 allows any printable ASCII), which a string would read as patterns.
  return template.replaceAll(TOKEN_MARK, () => accessToken);
}

export function placeholdersIn(text: string): string[] {
  const names: string[] = [];
  for (const match of text.matchAll(PLACEHOLDER)) {
    if (match[1] !== undefined) names.push(match[1]);
  }
  return names;
}

/**
 * Replaces every `{name}` in `text` with `values[name]`. `keep` lists names left as
 * they are for a later pass (`{token}` until a token exists). `field` names the input
 * in the error when a value is missing.
 */
export function expandTemplate(
  text: string,
  values: Readonly<Record<string, string>>,
  field: string,
  keep: readonly string[] = [],
): string {
  if (!text.includes("{") && !text.includes("}")) return text; // the common case: nothing to do
  return text.replace(PLACEHOLDER, (whole, name: string | undefined) => {
    if (name === undefined) return whole === "{{" ? "{" : "}";
    if (keep.includes(name)) return whole;
    const value = values[name];
    if (value === undefined) throw invalidConfig(field, `no value for parameter {${name}}`);
    return value;
  });
}

/**
 * Walks a JSON-like value and expands every string in it. Paths in `skip` (dotted,
 * relative to `value`) are copied untouched: regular expressions and PEM blocks are
 * not templates.
 */
export function expandTemplatesDeep<T>(
  value: T,
  values: Readonly<Record<string, string>>,
  options: { path?: string; keep?: readonly string[]; skip?: readonly string[] } = {},
): T {
  const path = options.path ?? "";
  if (options.skip?.includes(path)) return value;
  if (typeof value === "string") {
    return expandTemplate(value, values, path, options.keep) as T;
  }
  if (Array.isArray(value)) {
    return value.map((item, i) =>
      expandTemplatesDeep(item, values, { ...options, path: join(path, String(i)) }),
    ) as T;
  }
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = expandTemplatesDeep(item, values, { ...options, path: join(path, key) });
    }
    return out as T;
  }
  return value;
}

/** Every placeholder used anywhere inside a JSON-like value, with the field it is in. */
export function placeholdersDeep(
  value: unknown,
  options: { path?: string; skip?: readonly string[] } = {},
): Array<{ field: string; name: string }> {
  const path = options.path ?? "";
  if (options.skip?.includes(path)) return [];
  if (typeof value === "string") {
    return placeholdersIn(value).map((name) => ({ field: path, name }));
  }
  if (Array.isArray(value)) {
    return value.flatMap((item, i) =>
      placeholdersDeep(item, { ...options, path: join(path, String(i)) }),
    );
  }
  if (value !== null && typeof value === "object") {
    return Object.entries(value).flatMap(([key, item]) =>
      placeholdersDeep(item, { ...options, path: join(path, key) }),
    );
  }
  return [];
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}
