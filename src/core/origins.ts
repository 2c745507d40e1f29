/**
 * A stored secret goes only where it was stored for. The
 * destinations of an integration are the origins (scheme, host, port) its secrets
 * and tokens are sent to, plus what decides who can read them on the way: the proxy
 * and a weakened TLS check. A change whose destinations include one the stored
 * secrets were not sent with must carry them again. Pure functions; the broker
 * (catalogue.ts) applies them.
 */
import { createHash } from "node:crypto";
import { expandTemplate, placeholdersIn } from "./template.js";

/**
 * Fields whose URL receives client credentials, a private key's proof, a password or
 * a refresh token. `authorizationUrl` is where a person is sent to grant access: moving
 * it hands the grant (and the code later redeemed with the secret) to another server.
 * Fields an integration does not have yet (discovery, introspection, device
 * authorization) apply as soon as they exist.
 */
export const SECRET_DESTINATION_FIELDS = [
  "tokenUrl",
  "revocationUrl",
  "authorizationUrl",
  "introspectionUrl",
  "discoveryUrl",
  // It names the authorization server (RFC 9728), as discoveryUrl does.
  "mcpServerUrl",
  "deviceAuthorizationUrl",
  "refreshHook",
  "proxyUrl",
] as const;

/** The destinations of an integration (templated hosts as their authority template). */
export function secretDestinations(integration: object): Set<string> {
  const record = integration as Record<string, unknown>;
  const out = new Set<string>();
  for (const field of SECRET_DESTINATION_FIELDS) {
    const value = record[field];
    if (typeof value !== "string") continue;
    out.add(field === "refreshHook" ? hookDestination(value) : originOf(value));
  }
  const tls = record.tls as { mode?: unknown; ca?: unknown } | undefined;
  // Verifying certificates is the default and the safe side: only a weaker check counts.
  if (tls !== undefined && tls.mode !== undefined && tls.mode !== "verify") {
    const ca = typeof tls.ca === "string" ? sha256(tls.ca) : "";
    out.add(`tls:${String(tls.mode)}:${ca}`);
  }
  return out;
}

/** Destinations in `after` that were not in `before`, for the error message. */
export function newDestinations(before: Set<string>, after: Set<string>): string[] {
  return [...after].filter((d) => !before.has(d)).sort();
}

/**
 * `scheme://host:port` of a URL or URL template, the port always written. A host
 * placeholder stays as written (`https://{tenant}.example.com:443`), so two templates
 * compare by their authority template, whatever values connections give.
 */
export function originOf(template: string): string {
  const names = [...new Set(placeholdersIn(template))];
  // Stand-ins a URL parser keeps as they are in a host: lower-case letters and digits.
  const marker = (i: number) => `twph${i}x${names.length}z`;
  let text: string;
  try {
    text = expandTemplate(
      template,
      Object.fromEntries(names.map((name, i) => [name, marker(i)])),
      "url",
    );
  } catch {
    return `unparsable:${template}`;
  }
  if (!URL.canParse(text)) return `unparsable:${template}`;
  const url = new URL(text);
  let host = url.hostname;
  names.forEach((name, i) => {
    host = host.replaceAll(marker(i), `{${name}}`);
  });
  const port = url.port === "" ? defaultPort(url.protocol) : url.port;
  return `${url.protocol}//${host}:${port}`;
}

/** A URL hook by its origin; a module hook by its path (other code is another place). */
function hookDestination(hook: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(hook) ? originOf(hook) : `module:${hook}`;
}

function defaultPort(protocol: string): string {
  if (protocol === "https:") return "443";
  if (protocol === "http:") return "80";
  return "";
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}
