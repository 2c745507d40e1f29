/**
 * `{name}` in a URL (SECURITY.md): a value is data, never syntax.
 * The template is split into its parts first, from its own literal text (placeholder
 * names hold none of `: / ? # @ [ ] \`), and each value is fitted to the part it
 * lands in: a host label in the host, digits in the port, percent-encoded in a path
 * segment or the query. Nowhere else (scheme, credentials, fragment). So a value of
 * `evil.com#`, `../../x` or `a&client_id=b` cannot move a request, carrying the
 * client's credentials, to another host, path or parameter.
 */
import { invalidConfig } from "./errors.js";
import { expandTemplate, placeholdersIn } from "./template.js";

export type UrlPart = "scheme" | "userinfo" | "host" | "port" | "path" | "query" | "fragment";

export interface UrlTemplatePiece {
  part: UrlPart;
  text: string;
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
/** RFC 1123 host label. */
const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const PORT = /^[0-9]{1,5}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/** The parts of a URL template, in order; `undefined` when it has no `scheme://`. */
export function splitUrlTemplate(template: string): UrlTemplatePiece[] | undefined {
  const scheme = SCHEME.exec(template);
  if (scheme === null) return undefined;
  const pieces: UrlTemplatePiece[] = [{ part: "scheme", text: scheme[0] }];
  let rest = template.slice(scheme[0].length);
  // WHATWG ends the authority at a backslash too (for http and https).
  const authorityEnd = rest.search(/[/?#\\]/);
  const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
  rest = authorityEnd === -1 ? "" : rest.slice(authorityEnd);
  const at = authority.lastIndexOf("@");
  if (at !== -1) pieces.push({ part: "userinfo", text: authority.slice(0, at + 1) });
  const hostPort = authority.slice(at + 1);
  const portAt = hostPort.startsWith("[")
    ? hostPort.indexOf(":", hostPort.indexOf("]"))
    : hostPort.indexOf(":");
  pieces.push({ part: "host", text: portAt === -1 ? hostPort : hostPort.slice(0, portAt) });
  if (portAt !== -1) pieces.push({ part: "port", text: hostPort.slice(portAt) });
  const queryAt = rest.search(/[?#]/);
  const path = queryAt === -1 ? rest : rest.slice(0, queryAt);
  if (path !== "") pieces.push({ part: "path", text: path });
  rest = rest.slice(path.length);
  if (rest.startsWith("?")) {
    const hash = rest.indexOf("#");
    pieces.push({ part: "query", text: hash === -1 ? rest : rest.slice(0, hash) });
    rest = hash === -1 ? "" : rest.slice(hash);
  }
  if (rest !== "") pieces.push({ part: "fragment", text: rest });
  return pieces;
}

/** Why a URL template may not hold a placeholder where it does, or `undefined`. */
export function misplacedPlaceholder(template: string): string | undefined {
  const pieces = splitUrlTemplate(template);
  if (pieces === undefined)
    return placeholdersIn(template).length > 0 ? "has no scheme" : undefined;
  for (const { part, text } of pieces) {
    const names = placeholdersIn(text);
    if (names.length === 0) continue;
    if (part === "scheme" || part === "userinfo" || part === "fragment") {
      return `may not hold {${names[0]}} in its ${part === "userinfo" ? "credentials" : part}`;
    }
  }
  return undefined;
}

/**
 * Fills a URL template, each value fitted to its part; a value that cannot be
 * (a host value that is not a host label, a port that is not digits, a path segment
 * that would become `.`, `..` or empty) is refused naming `parameters.<name>`.
 */
export function expandUrlTemplate(
  template: string,
  values: Readonly<Record<string, string>>,
  field: string,
): string {
  if (!template.includes("{") && !template.includes("}")) return template;
  const pieces = splitUrlTemplate(template);
  if (pieces === undefined) throw invalidConfig(field, "must be an absolute http(s) URL");
  return pieces.map((piece) => expandPiece(piece, values, field)).join("");
}

function expandPiece(
  { part, text }: UrlTemplatePiece,
  values: Readonly<Record<string, string>>,
  field: string,
): string {
  const fitted = (fitValue: (value: string, name: string) => string) =>
    Object.fromEntries(
      placeholdersIn(text).map((name) => {
        const value = values[name];
        if (value === undefined) throw invalidConfig(field, `no value for parameter {${name}}`);
        return [name, fitValue(value, name)];
      }),
    );
  switch (part) {
    case "scheme":
    case "userinfo":
    case "fragment": {
      // Refused when the integration is written; an older stored one is refused here.
      const name = placeholdersIn(text)[0];
      if (name !== undefined) {
        const where = part === "userinfo" ? "credentials" : part;
        throw invalidConfig(field, `may not hold {${name}} in its ${where}`);
      }
      return expandTemplate(text, {}, field);
    }
    case "host":
      return expandTemplate(
        text,
        fitted((value, name) => {
          if (!HOST_LABEL.test(value)) {
            throw invalidConfig(
              `parameters.${name}`,
              `is used in the host of ${field}: it must be one host label (letters, digits and -, at most 63, not starting or ending with -)`,
            );
          }
          return value;
        }),
        field,
      );
    case "port":
      return expandTemplate(
        text,
        fitted((value, name) => {
          if (!PORT.test(value))
            throw invalidConfig(
              `parameters.${name}`,
              `is used as the port of ${field}: digits only`,
            );
          return value;
        }),
        field,
      );
    case "path":
      return text
        .split("/")
        .map((segment) => expandSegment(segment, values, field))
        .join("/");
    case "query":
      return expandTemplate(text, fitted(encodeURIComponent), field);
  }
}

/**
 * One path segment: every value percent-encoded (`/`, `?`, `#`, `%` included), and
 * the segment must not become a dot segment (in any encoding) or vanish, which would
 * move the path.
 */
function expandSegment(
  segment: string,
  values: Readonly<Record<string, string>>,
  field: string,
): string {
  const names = placeholdersIn(segment);
  if (names.length === 0) return expandTemplate(segment, values, field);
  const encoded: Record<string, string> = {};
  for (const name of names) {
    const value = values[name];
    if (value === undefined) throw invalidConfig(field, `no value for parameter {${name}}`);
    encoded[name] = encodeURIComponent(value);
  }
  const expanded = expandTemplate(segment, encoded, field);
  // Looked at as a server would after decoding it, even more than once (`%252e`).
  let plain = expanded;
  for (let round = 0; round < 4; round++) plain = plain.replace(/%2e/gi, ".").replace(/%25/g, "%");
  if (plain === "" || plain === "." || plain === "..") {
    throw invalidConfig(
      `parameters.${names[0]}`,
      `would make a path segment of ${field} ${plain === "" ? "empty" : `"${plain}"`}`,
    );
  }
  return expanded;
}
