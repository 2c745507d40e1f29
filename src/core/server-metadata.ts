/**
 * Authorization server metadata (RFC 8414 §2; OpenID Connect Discovery §3): the fields
 * Tokenwarden reads, each endpoint https (or http on this machine: a test server, a
 * sidecar). Other fields pass through untouched.
 */
import { z } from "zod";
import { isLoopbackHost } from "./integration.js";

function isEndpointUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  if (url.hash !== "") return false;
  return url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHost(url.hostname));
}

const endpoint = z
  .string()
  .refine(isEndpointUrl, "must be an https URL (http only on loopback), without a fragment");
const names = z.array(z.string());

export const serverMetadataSchema = z.looseObject({
  issuer: endpoint,
  authorization_endpoint: endpoint.optional(),
  token_endpoint: endpoint.optional(),
  revocation_endpoint: endpoint.optional(),
  introspection_endpoint: endpoint.optional(),
  device_authorization_endpoint: endpoint.optional(),
  registration_endpoint: endpoint.optional(),
  jwks_uri: endpoint.optional(),
  scopes_supported: names.optional(),
  token_endpoint_auth_methods_supported: names.optional(),
  code_challenge_methods_supported: names.optional(),
  grant_types_supported: names.optional(),
  /** RFC 9207 §3: the authorization response carries `iss`. */
  authorization_response_iss_parameter_supported: z.boolean().optional(),
  /** A client may be the https URL of its metadata document (OAuth Client ID Metadata Document). */
  client_id_metadata_document_supported: z.boolean().optional(),
});
export type ServerMetadata = z.output<typeof serverMetadataSchema>;

/** Integration fields filled from metadata when the integration leaves them out. */
const ENDPOINT_FIELDS = [
  ["authorizationUrl", "authorization_endpoint"],
  ["tokenUrl", "token_endpoint"],
  ["revocationUrl", "revocation_endpoint"],
  ["introspectionUrl", "introspection_endpoint"],
  ["deviceAuthorizationUrl", "device_authorization_endpoint"],
] as const;

type EndpointFields = { [K in (typeof ENDPOINT_FIELDS)[number][0]]?: string | undefined };

/**
 * The integration's own fields win; metadata fills what it leaves out. The metadata
 * rides along (`server`) for what is decided per request: the `iss` check, the
 * methods `clientAuth: auto` may try.
 */
export function withServerMetadata<T extends EndpointFields>(
  resolved: T,
  metadata: ServerMetadata,
): T & { server: ServerMetadata } {
  const out: T & { server: ServerMetadata } = { ...resolved, server: metadata };
  for (const [field, name] of ENDPOINT_FIELDS) {
    const value = metadata[name];
    if (out[field] === undefined && value !== undefined) out[field] = value;
  }
  return out;
}

/**
 * RFC 8414 §3.3: the issuer in the document must be the one it was asked for. A
 * trailing `/` is the one spelling difference forgiven: an issuer typed without the
 * slash its server writes (`https://tenant.auth0.com/`) is still the same server.
 */
export function sameIssuer(expected: string, actual: string): boolean {
  const strip = (v: string) => (v.endsWith("/") ? v.slice(0, -1) : v);
  return expected === actual || strip(expected) === strip(actual);
}
