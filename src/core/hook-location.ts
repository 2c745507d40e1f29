/**
 * Where a refresh hook lives: a URL (it has a scheme) or a module path (it has none),
 * and which of them an integration may name.
 */
import { isHttpUrlTemplate } from "./integration-fields.js";
import { placeholdersIn } from "./template.js";
import { misplacedPlaceholder } from "./url-template.js";

/**
 * A refresh hook is a URL (it has a scheme) or a module path (it has none). A URL is
 * `https://`, or `http://` on this machine only (a sidecar); any other scheme
 * (`file:`, `data:`, `node:`) is refused. A module path is a file name, not a template.
 */
export function isUrlHook(hook: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:/.test(hook);
}

export function refreshHookProblem(hook: string): string | undefined {
  if (!isUrlHook(hook)) {
    return placeholdersIn(hook).length > 0
      ? "a module path may not hold {placeholders}"
      : undefined;
  }
  const usable = "must be a module path, an https:// URL, or an http:// URL on loopback";
  if (!URL.canParse(hook.replace(/\{[A-Za-z_][A-Za-z0-9_.-]*\}/g, "x"))) return usable;
  if (!isHttpUrlTemplate(hook)) return usable;
  const misplaced = misplacedPlaceholder(hook);
  if (misplaced !== undefined) return misplaced;
  const url = new URL(hook.replace(/\{[A-Za-z_][A-Za-z0-9_.-]*\}/g, "x"));
  if (url.protocol === "https:") return undefined;
  if (url.protocol === "http:" && isLoopbackHost(url.hostname)) return undefined;
  return usable;
}

/** Loopback, as the URL parser normalized it (`127.1` and `0x7f.0.0.1` are 127.0.0.1). */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
