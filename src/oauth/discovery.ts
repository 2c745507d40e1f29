/**
 * Authorization server discovery: RFC 8414 and OpenID Connect Discovery 1.0.
 * `discoveryUrl` is an issuer (`https://login.example.com/tenant`) or a metadata URL
 * (its path holds `/.well-known/`). The document is validated: its issuer must be the
 * one asked for (RFC 8414 §3.3; a document served for someone else is refused), every
 * endpoint https or loopback http.
 */
import { TokenwardenError } from "../core/errors.js";
import { type ServerMetadata, sameIssuer, serverMetadataSchema } from "../core/server-metadata.js";
import {
  describeEndpoint,
  type HttpClient,
  headerValue,
  sendHttpRequest,
  type TransportSettings,
} from "./http.js";

export interface DiscoveredServer {
  metadata: ServerMetadata;
  /** How long the document may be reused, from its Cache-Control (bounded by the caller). */
  maxAgeSeconds: number | undefined;
  /** The URL it was read from. */
  metadataUrl: string;
}

const OIDC_SUFFIX = "/.well-known/openid-configuration";
const RFC8414_PREFIX = "/.well-known/oauth-authorization-server";
/** A metadata document is a few kilobytes. */
const MAX_METADATA_BYTES = 256 * 1024;

/** The metadata URLs to try, in order, each with the issuer it must name. */
export function metadataCandidates(discoveryUrl: string): { url: string; issuer: string }[] {
  const url = new URL(discoveryUrl);
  url.hash = "";
  const path = url.pathname;
  const wellKnown = path.indexOf("/.well-known/");
  if (wellKnown >= 0) {
    // A metadata URL: the issuer is what is left once the well-known part is out.
    const after = path.slice(wellKnown + "/.well-known/".length);
    const slash = after.indexOf("/");
    const rest = slash < 0 ? "" : after.slice(slash);
    const issuerPath = path.slice(0, wellKnown) + rest;
    return [{ url: url.href, issuer: url.origin + issuerPath }];
  }
  const issuerPath = path === "/" ? "" : path.replace(/\/$/, "");
  const issuer = url.origin + issuerPath;
  return [
    // OpenID Connect Discovery §4: the well-known path appended to the issuer's.
    { url: `${issuer}${OIDC_SUFFIX}`, issuer },
    // RFC 8414 §3.1: inserted between the host and the issuer's path.
    { url: `${url.origin}${RFC8414_PREFIX}${issuerPath}`, issuer },
  ];
}

export async function discoverServer(
  discoveryUrl: string,
  transport: TransportSettings,
  options: { http?: HttpClient } = {},
): Promise<DiscoveredServer> {
  const candidates = metadataCandidates(discoveryUrl);
  let lastStatus = 0;
  for (const [index, candidate] of candidates.entries()) {
    const url = new URL(candidate.url);
    const what = `metadata ${describeEndpoint(url)}`;
    const res = await sendHttpRequest(
      { method: "GET", url, headers: { accept: "application/json" } },
      transport,
      { what, maxResponseBytes: MAX_METADATA_BYTES, http: options.http },
    );
    lastStatus = res.status;
    // The other well-known path may be the one this server serves.
    if (res.status === 404 && index < candidates.length - 1) continue;
    if (res.status !== 200) break;
    let body: unknown;
    try {
      body = JSON.parse(res.body);
    } catch {
      throw invalidMetadata(what, "is not JSON");
    }
    const parsed = serverMetadataSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue?.path.join(".") ?? "";
      throw invalidMetadata(
        what,
        `${field === "" ? "" : `${field}: `}${issue?.message ?? "is invalid"}`,
      );
    }
    if (!sameIssuer(candidate.issuer, parsed.data.issuer)) {
      throw invalidMetadata(
        what,
        `names issuer ${parsed.data.issuer}, not ${candidate.issuer} (RFC 8414 §3.3): refused`,
      );
    }
    return {
      metadata: parsed.data,
      maxAgeSeconds: maxAge(headerValue(res.headers["cache-control"])),
      metadataUrl: candidate.url,
    };
  }
  throw new TokenwardenError(
    "invalid_config",
    `discoveryUrl: no authorization server metadata at ${describeEndpoint(new URL(candidates[0]?.url ?? discoveryUrl))} (HTTP ${lastStatus})`,
    { field: "discoveryUrl", status: lastStatus },
  );
}

function invalidMetadata(what: string, reason: string): TokenwardenError {
  return new TokenwardenError("invalid_config", `discoveryUrl: ${what} ${reason}`, {
    field: "discoveryUrl",
  });
}

/** `max-age` (0 for `no-store`/`no-cache`), `undefined` when the server says nothing. */
export function maxAge(cacheControl: string | undefined): number | undefined {
  if (cacheControl === undefined) return undefined;
  const directives = cacheControl
    .toLowerCase()
    .split(",")
    .map((d) => d.trim());
  if (directives.includes("no-store") || directives.includes("no-cache")) return 0;
  for (const directive of directives) {
    const match = /^max-age=(\d+)$/.exec(directive);
    if (match !== null) return Number(match[1]);
  }
  return undefined;
}
