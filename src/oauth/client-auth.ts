/**
 * Client authentication at the token, revocation and introspection endpoints.
 *
 * - `basic`: RFC 6749 §2.3.1. The id and secret are each
 *   `application/x-www-form-urlencoded` before being joined with `:` and Base64'd, so
 *   a secret holding `:` `%` `+` or `&` survives.
 * - `basic_raw`: the same header without that encoding, as many servers expect.
 * - `body`: `client_id` and `client_secret` as form fields (or query fields for a GET
 *   token request, which has no body).
 * - `query`: both in the URL's query string whatever the verb.
 * - `client_secret_jwt` / `private_key_jwt`: a signed assertion (RFC 7523 §2.2 and
 *   §3; OpenID Connect Core §9), HMAC with the secret or signed with `clientPrivateKey`.
 * - `tls_client_auth`: RFC 8705 §2.1; the certificate (`tls.cert`/`tls.key`) is
 *   presented by the connection pool, the request names the client only.
 * - `none`: a public client, `client_id` only.
 * - `auto` is not a method: token-endpoint.ts tries the candidates (auto-auth.ts).
 *
 * A client without a secret is a public client: for the secret-based methods only
 * `client_id` is sent, as a form field (RFC 6749 §3.2.1).
 */
import { createPrivateKey, createSecretKey, type KeyObject, randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import { invalidConfig } from "../core/errors.js";
import type { ClientAuthMethod, ClientKeyAlg } from "../core/integration.js";

export interface ClientCredentials {
  clientId: string;
  clientSecret?: string | undefined;
  clientPrivateKey?: string | undefined;
  clientKeyId?: string | undefined;
  clientKeyAlg?: ClientKeyAlg | undefined;
}

export interface AuthenticatedRequestParts {
  headers: Record<string, string>;
  /** Fields for the form body (or the query string of a GET request). */
  params: URLSearchParams;
  /** Fields that must go in the URL whatever the verb. */
  query: URLSearchParams;
}

/** What a signed assertion needs besides the client: who it is for, and when it is. */
export interface AssertionContext {
  /** The `aud` claim: the token endpoint URL (RFC 7523 §3), or the issuer. */
  audience: string;
  /** Epoch milliseconds, from the injected clock. */
  now: number;
}

/** An assertion is for one request: a short life bounds a replay. */
const ASSERTION_LIFETIME_SECONDS = 60;
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

export type ConcreteClientAuthMethod = Exclude<ClientAuthMethod, "auto">;

export async function applyClientAuthentication(
  method: ConcreteClientAuthMethod,
  client: ClientCredentials,
  parts: AuthenticatedRequestParts,
  assertion: AssertionContext,
): Promise<void> {
  const { clientId, clientSecret } = client;
  switch (method) {
    case "none":
    case "tls_client_auth":
      parts.params.set("client_id", clientId);
      return;
    case "private_key_jwt":
      return addAssertion(parts, clientId, await signAssertion(client, assertion));
  }
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
    case "client_secret_jwt":
      return addAssertion(parts, clientId, await signAssertion(client, assertion));
  }
}

function addAssertion(parts: AuthenticatedRequestParts, clientId: string, jwt: string): void {
  // client_id is optional next to an assertion (RFC 7523 §2.2) but harmless, and some
  // servers look the client up by it before reading the assertion.
  parts.params.set("client_id", clientId);
  parts.params.set("client_assertion_type", ASSERTION_TYPE);
  parts.params.set("client_assertion", jwt);
}

/**
 * RFC 7523 §3: iss = sub = client_id, aud = the authorization server, a unique jti,
 * a short exp. HMAC with the client secret for `client_secret_jwt` (the secret is the
 * key, never sent), the private key otherwise.
 */
export async function signAssertion(
  client: ClientCredentials,
  context: AssertionContext,
  claims: Record<string, unknown> = {},
  subject: string = client.clientId,
  lifetimeSeconds: number = ASSERTION_LIFETIME_SECONDS,
): Promise<string> {
  const { key, alg } = signingKey(client);
  const iat = Math.floor(context.now / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({
      alg,
      typ: "JWT",
      ...(client.clientKeyId === undefined ? {} : { kid: client.clientKeyId }),
    })
    .setIssuer(client.clientId)
    .setSubject(subject)
    .setAudience(context.audience)
    .setJti(randomBytes(16).toString("base64url"))
    .setIssuedAt(iat)
    .setExpirationTime(iat + lifetimeSeconds)
    .sign(key);
}

/** The signing key and algorithm: the private key if there is one, else the secret (HS). */
export function signingKey(client: ClientCredentials): { key: KeyObject; alg: ClientKeyAlg } {
  const { clientPrivateKey, clientSecret, clientKeyAlg } = client;
  if (clientPrivateKey !== undefined) {
    const key = privateKeyObject(clientPrivateKey);
    return { key, alg: clientKeyAlg ?? defaultAlgFor(key) };
  }
  if (clientSecret !== undefined) {
    // OpenID Connect Core §10.1: the secret's UTF-8 octets are the HMAC key.
    return {
      key: createSecretKey(Buffer.from(clientSecret, "utf8")),
      alg: clientKeyAlg ?? "HS256",
    };
  }
  throw invalidConfig(
    "clientPrivateKey",
    "a signed assertion needs clientPrivateKey or clientSecret",
  );
}

/** PEM (any of Node's private key encodings) or a JWK with its private part. */
export function privateKeyObject(text: string): KeyObject {
  try {
    const trimmed = text.trim();
    return trimmed.startsWith("{")
      ? createPrivateKey({ key: JSON.parse(trimmed), format: "jwk" })
      : createPrivateKey(trimmed);
  } catch {
    // The key's text must never reach a message: say what, not which.
    throw invalidConfig("clientPrivateKey", "is not a private key Node.js can read");
  }
}

function defaultAlgFor(key: KeyObject): ClientKeyAlg {
  switch (key.asymmetricKeyType) {
    case "rsa":
    case "rsa-pss":
      return "RS256";
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === "secp384r1" ? "ES384" : curve === "secp521r1" ? "ES512" : "ES256";
    }
    case "ed25519":
      return "EdDSA";
    default:
      throw invalidConfig(
        "clientPrivateKey",
        `a ${key.asymmetricKeyType ?? "unknown"} key cannot sign a JWT here; use RSA, EC or Ed25519`,
      );
  }
}

/** `application/x-www-form-urlencoded` encoding of one value (WHATWG URL, as browsers do it). */
export function formEncode(value: string): string {
  return new URLSearchParams([["", value]]).toString().slice(1);
}

function basicAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`;
}
