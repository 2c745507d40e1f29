import type { ClientAuthMethod } from "../core/integration.js";

/**
 * Client authentication at the token and revocation endpoints.
 *
 * - `basic`: RFC 6749 §2.3.1. The id and secret are each
 *   `application/x-www-form-urlencoded` before being joined with `:` and Base64'd, so
 *   a secret holding `:` `%` `+` or `&` survives.
 * - `basic_raw`: the same header without that encoding, as many servers expect.
 * - `body`: `client_id` and `client_secret` as form fields (or query fields for a GET
 *   token request, which has no body).
 * - `query`: both in the URL's query string whatever the verb.
 *
 * A client without a secret is a public client: only `client_id` is sent, as a form
 * field (RFC 6749 §3.2.1).
 */
export interface ClientCredentials {
  clientId: string;
  clientSecret?: string | undefined;
}

export interface AuthenticatedRequestParts {
  headers: Record<string, string>;
  /** Fields for the form body (or the query string of a GET request). */
  params: URLSearchParams;
  /** Fields that must go in the URL whatever the verb. */
  query: URLSearchParams;
}

export function applyClientAuthentication(
  method: ClientAuthMethod,
  client: ClientCredentials,
  parts: AuthenticatedRequestParts,
): void {
  const { clientId, clientSecret } = client;
  if (clientSecret === undefined) {
    parts.params.set("client_id", clientId);
    return;
  }
  switch (method) {
    case "basic":
      parts.headers.authorization = basicAuthorization(
        formEncode(clientId),
        formEncode(clientSecret),
      );
      return;
    case "basic_raw":
      parts.headers.authorization = basicAuthorization(clientId, clientSecret);
      return;
    case "body":
      parts.params.set("client_id", clientId);
      parts.params.set("client_secret", clientSecret);
      return;
    case "query":
      parts.query.set("client_id", clientId);
      parts.query.set("client_secret", clientSecret);
      return;
  }
}

/** `application/x-www-form-urlencoded` encoding of one value (WHATWG URL, as browsers do it). */
export function formEncode(value: string): string {
  return new URLSearchParams([["", value]]).toString().slice(1);
}

function basicAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`;
}
