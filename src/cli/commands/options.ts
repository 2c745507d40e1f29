import { invalidConfig } from "../../core/errors.js";

/** commander's accumulator for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * `field=value` pairs into an object; the value is read as JSON when it parses
 * (`retryOn=[401]`, `pkce=false`), else taken as a string.
 */
export function parseAssignments(
  pairs: readonly string[],
  option: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw invalidConfig(option, `${pair} is not name=value`);
    const raw = pair.slice(at + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    out[pair.slice(0, at)] = value;
  }
  return out;
}

/** `name=value` pairs kept as strings (connection parameters, headers). */
export function parsePairs(
  pairs: readonly string[],
  option: string,
  separator = "=",
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf(separator);
    if (at <= 0) throw invalidConfig(option, `${pair} is not name${separator}value`);
    out[pair.slice(0, at).trim()] = pair.slice(at + separator.length).trim();
  }
  return out;
}
