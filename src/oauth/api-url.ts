/**
 * Where an API call goes (SECURITY.md, "APIs"). The access token travels
 * with it, so the answer is decided on the final parsed URL: a relative path lands
 * under `apiBaseUrl`'s path on its origin, and an absolute URL is taken only on that
 * origin or one of `allowedApiOrigins`. Spellings that some upstream would read as
 * another path (encoded slashes, backslashes, dot segments at any depth of encoding)
 * are refused before that, since the URL parser here would keep them as they are.
 */
import { invalidConfig, TokenwardenError } from "../core/errors.js";
import type { ResolvedIntegration } from "../core/resolve.js";

export type ApiUrlConfig = Pick<
  ResolvedIntegration,
  "apiBaseUrl" | "allowedApiOrigins" | "requestParams"
>;

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const QUERY_OR_FRAGMENT = /[?#]/;
/** How many rounds of percent-decoding are looked through; deeper is refused. */
const MAX_DECODING_DEPTH = 3;

/** `apiBaseUrl` as relative paths use it: its origin, and its path ending in `/`. */
interface ApiBase {
  origin: string;
  prefix: string;
}

export function apiUrl(config: ApiUrlConfig, path: string): URL {
  const url = SCHEME.test(path) ? absoluteUrl(config, path) : underBase(parseBase(config), path);
  return withQuery(config, url);
}

/**
 * `apiUrl` for many calls: each config's `apiBaseUrl` is parsed once. Keyed by the
 * config object, which the broker shares between calls and never writes (resolve.ts).
 */
export class ApiUrls {
  /** `null`: the config has no apiBaseUrl. */
  readonly #bases = new WeakMap<ApiUrlConfig, ApiBase | null>();

  url(config: ApiUrlConfig, path: string): URL {
    const url = SCHEME.test(path) ? absoluteUrl(config, path) : underBase(this.#base(config), path);
    return withQuery(config, url);
  }

  #base(config: ApiUrlConfig): ApiBase | undefined {
    let base = this.#bases.get(config);
    if (base === undefined) {
      base = parseBase(config) ?? null;
      this.#bases.set(config, base);
    }
    return base ?? undefined;
  }
}

function withQuery(config: ApiUrlConfig, url: URL): URL {
  for (const name in config.requestParams.query)
    url.searchParams.set(name, config.requestParams.query[name] as string);
  return url;
}

function parseBase(config: ApiUrlConfig): ApiBase | undefined {
  if (config.apiBaseUrl === undefined) return undefined;
  const { origin, pathname } = new URL(config.apiBaseUrl);
  return { origin, prefix: pathname.endsWith("/") ? pathname : `${pathname}/` };
}

function absoluteUrl(config: ApiUrlConfig, href: string): URL {
  if (!URL.canParse(href)) throw refused("is not a valid URL");
  const url = new URL(href);
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw refused(`uses ${url.protocol}, not http(s)`);
  if (url.username !== "" || url.password !== "") throw refused("must not carry credentials");
  const allowed = new Set(config.allowedApiOrigins);
  if (config.apiBaseUrl !== undefined) allowed.add(new URL(config.apiBaseUrl).origin);
  if (!allowed.has(url.origin)) {
    throw refused(
      `is on ${url.origin}, which is neither apiBaseUrl's origin nor in allowedApiOrigins`,
    );
  }
  return url;
}

function underBase(base: ApiBase | undefined, path: string): URL {
  if (base === undefined) throw invalidConfig("apiBaseUrl", "is needed to call a relative path");
  const { origin, prefix } = base;
  const end = path.search(QUERY_OR_FRAGMENT);
  const rawPath = end === -1 ? path : path.slice(0, end);
  checkRelativePath(rawPath);
  // One parse of the whole URL (the prefix starts with `/`, so this is origin + path).
  const url = new URL(
    `${origin}${prefix}${rawPath.startsWith("/") ? rawPath.slice(1) : rawPath}${path.slice(rawPath.length)}`,
  );
  // The decision itself, on what will really be requested.
  const under = url.pathname === prefix.slice(0, -1) || url.pathname.startsWith(prefix);
  if (url.origin !== origin || !under) throw refused(`leaves ${origin}${prefix}`);
  return url;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL_OR_BACKSLASH = /[\\\u0000-\u001f\u007f-\u009f]/;
const ENCODED_SEPARATOR = /%(2f|5c)/i;
/** A segment named `.` or `..`, also with parameters (`..;x`): what a server resolves. */
const DOT_SEGMENT = /(?:^|\/)\.\.?(?:[;/]|$)/;

/**
 * Refuses a relative path that a server on the way could read as another one: a
 * leading `//` (another host), a backslash, an encoded `/` or `\`, a control
 * character, or a `.`/`..` segment (also as `..;x`), at any depth of percent-encoding
 * (`%2e%2e`, `%252e%252e`).
 */
export function checkRelativePath(rawPath: string): void {
  if (rawPath.startsWith("//")) throw refused("starts with //, which names another host");
  let level = rawPath;
  for (let depth = 0; ; depth++) {
    if (CONTROL_OR_BACKSLASH.test(level)) throw refused("holds a backslash or a control character");
    if (ENCODED_SEPARATOR.test(level)) throw refused("holds an encoded / or \\");
    if (DOT_SEGMENT.test(level)) throw refused("holds a dot segment");
    if (!level.includes("%")) return;
    const next = decodeAscii(level);
    if (next === level) return;
    if (depth === MAX_DECODING_DEPTH) throw refused("is percent-encoded too many times");
    level = next;
  }
}

/** One round of percent-decoding, ASCII only: what matters here (`.` `/` `\` `%`) is ASCII. */
function decodeAscii(text: string): string {
  return text.replace(/%([0-7][0-9A-Fa-f])/g, (_whole, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

function refused(reason: string): TokenwardenError {
  return new TokenwardenError("invalid_request", `the API path ${reason}`, { field: "path" });
}
