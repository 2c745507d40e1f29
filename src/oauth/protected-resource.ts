/**
 * RFC 9728, OAuth 2.0 Protected Resource Metadata: what a resource server (an MCP
 * server) says about itself, above all which authorization servers issue its tokens.
 * The document is read at the well-known URL (`/.well-known/oauth-protected-resource`,
 * inserted before the resource's path), or where the server's 401 points
 * (`WWW-Authenticate: Bearer resource_metadata="..."`, §5.1). Its `resource` must be
 * the resource asked about (§3.3): a document speaking for another is refused.
 */
import { z } from "zod";
import { TokenwardenError } from "../core/errors.js";
import { isLoopbackHost } from "../core/integration.js";
import { maxAge } from "./discovery.js";
import {
  describeEndpoint,
  type HttpClient,
  headerValue,
  sendHttpRequest,
  type TransportSettings,
} from "./http.js";

const WELL_KNOWN = "/.well-known/oauth-protected-resource";
/** A metadata document is a few kilobytes. */
const MAX_METADATA_BYTES = 256 * 1024;

function isSecureUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  if (url.hash !== "") return false;
  return url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHost(url.hostname));
}

const secureUrl = z
  .string()
  .refine(isSecureUrl, "must be an https URL (http only on loopback), without a fragment");

export const protectedResourceMetadataSchema = z.looseObject({
  resource: z.string(),
  authorization_servers: z.array(secureUrl).optional(),
  scopes_supported: z.array(z.string()).optional(),
});
export type ProtectedResourceMetadata = z.output<typeof protectedResourceMetadataSchema>;

export interface ObtainedResourceMetadata {
  metadata: ProtectedResourceMetadata & { authorization_servers: string[] };
  /** From the document's Cache-Control; the caller bounds it. */
  maxAgeSeconds: number | undefined;
  metadataUrl: string;
}

/** RFC 9728 §3.1: the well-known suffix between the host and the resource's path. */
export function protectedResourceMetadataUrl(resource: string): string {
  const url = new URL(resource);
  const path = url.pathname === "/" ? "" : url.pathname.replace(/\/$/, "");
  return `${url.origin}${WELL_KNOWN}${path}${url.search}`;
}

/** RFC 9728 §5.1: the `resource_metadata` parameter of a Bearer challenge, if any. */
export function resourceMetadataFromChallenge(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /(?:^|[\s,])resource_metadata\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/i.exec(
    header,
  );
  if (match === null) return undefined;
  const quoted = match[1];
  return quoted === undefined ? match[2] : quoted.replace(/\\(.)/g, "$1");
}

/**
 * RFC 9728 §3 "Obtaining Protected Resource Metadata": the well-known URL first; when
 * nothing is there, the resource itself is asked without a token and its 401 names
 * the document (§5.1). Refused (`invalid_config` on `mcpServerUrl`): no document, a
 * document for another resource, one naming no authorization server.
 */
export async function obtainProtectedResourceMetadata(
  resource: string,
  transport: TransportSettings,
  options: { http?: HttpClient } = {},
): Promise<ObtainedResourceMetadata> {
  const wellKnown = protectedResourceMetadataUrl(resource);
  let res = await fetchMetadata(wellKnown, transport, options.http);
  let metadataUrl = wellKnown;
  if (res.status !== 200) {
    const pointed = await challengedMetadataUrl(resource, transport, options.http);
    if (pointed === undefined) {
      throw refused(
        `no protected resource metadata at ${describeEndpoint(new URL(wellKnown))} (HTTP ${res.status}), and the server's 401 names none (RFC 9728)`,
        res.status,
      );
    }
    if (!isSecureUrl(pointed)) {
      throw refused(`the server's 401 names metadata at a URL that is not https: refused`);
    }
    metadataUrl = pointed;
    res = await fetchMetadata(pointed, transport, options.http);
    if (res.status !== 200) {
      throw refused(
        `no protected resource metadata at ${describeEndpoint(new URL(pointed))} (HTTP ${res.status})`,
        res.status,
      );
    }
  }
  const what = `protected resource metadata ${describeEndpoint(new URL(metadataUrl))}`;
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    throw refused(`${what} is not JSON`);
  }
  const parsed = protectedResourceMetadataSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join(".") ?? "";
    throw refused(`${what}: ${field === "" ? "" : `${field}: `}${issue?.message ?? "is invalid"}`);
  }
  const metadata = parsed.data;
  if (!sameResource(metadata.resource, resource)) {
    throw refused(
      `${what} names resource ${metadata.resource}, not ${resource} (RFC 9728 §3.3): refused`,
    );
  }
  const servers = metadata.authorization_servers ?? [];
  if (servers.length === 0) {
    throw refused(`${what} names no authorization_servers: there is no server to authorize with`);
  }
  return {
    metadata: { ...metadata, authorization_servers: servers },
    maxAgeSeconds: maxAge(headerValue(res.headers["cache-control"])),
    metadataUrl,
  };
}

/** Identical once parsed (host case, default port and an empty path spelled `/` aside). */
function sameResource(a: string, b: string): boolean {
  return URL.canParse(a) && URL.canParse(b) && new URL(a).href === new URL(b).href;
}

async function fetchMetadata(url: string, transport: TransportSettings, http?: HttpClient) {
  const target = new URL(url);
  return sendHttpRequest(
    { method: "GET", url: target, headers: { accept: "application/json" } },
    transport,
    {
      what: `protected resource metadata ${describeEndpoint(target)}`,
      maxResponseBytes: MAX_METADATA_BYTES,
      ...(http === undefined ? {} : { http }),
    },
  );
}

/** The resource asked without a token: its 401 may name the metadata (RFC 9728 §5.1). */
async function challengedMetadataUrl(
  resource: string,
  transport: TransportSettings,
  http?: HttpClient,
): Promise<string | undefined> {
  const target = new URL(resource);
  const res = await sendHttpRequest(
    {
      method: "GET",
      url: target,
      headers: { accept: "application/json, text/event-stream" },
    },
    transport,
    {
      what: `MCP server ${describeEndpoint(target)}`,
      maxResponseBytes: MAX_METADATA_BYTES,
      ...(http === undefined ? {} : { http }),
    },
  );
  if (res.status !== 401) return undefined;
  const challenges = res.headers["www-authenticate"];
  const found = resourceMetadataFromChallenge(
    Array.isArray(challenges) ? challenges.join(", ") : challenges,
  );
  if (found === undefined || !URL.canParse(found, resource)) return found;
  return new URL(found, resource).href;
}

function refused(reason: string, status?: number): TokenwardenError {
  return new TokenwardenError("invalid_config", `mcpServerUrl: ${reason}`, {
    field: "mcpServerUrl",
    ...(status === undefined ? {} : { status }),
  });
}
