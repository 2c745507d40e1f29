/**
 * The front-channel half of the authorization code grant (RFC 6749 §4.1.1-§4.1.2)
 * with PKCE (RFC 7636). `state` is not optional here: every authorization carries one.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { TokenwardenError } from "../core/errors.js";
import type { ResolvedIntegration } from "../core/resolve.js";
import type { ServerMetadata } from "../core/server-metadata.js";

export type AuthorizationConfig = Pick<
  ResolvedIntegration,
  | "authorizationUrl"
  | "clientId"
  | "scopes"
  | "scopeSeparator"
  | "pkce"
  | "authorizationParams"
  | "resource"
>;

/** 256 bits from the CSPRNG, base64url: unguessable, URL-safe. */
export function generateState(): string {
  return randomBytes(32).toString("base64url");
}

/** RFC 7636 §4.1: 32 random octets, base64url, 43 characters. */
export function generateCodeVerifier(): string {
  return randomBytes(32).toString("base64url");
}

/** RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))). */
export function calculateCodeChallenge(verifier: string): string {
  return createHash("sha256").update(verifier, "ascii").digest("base64url");
}

export interface AuthorizationRequest {
  url: URL;
  state: string;
  /** Kept by the caller until the callback; never sent to the front channel. */
  codeVerifier?: string;
}

/**
 * Builds the authorization request. `authorizationParams` may add fields (`prompt`,
 * `access_type=offline`) but not replace `state`, the PKCE challenge or the redirect.
 */
export function buildAuthorizationRequest(
  config: AuthorizationConfig,
  input: { redirectUri: string; state?: string; codeVerifier?: string },
): AuthorizationRequest {
  if (config.authorizationUrl === undefined) {
    throw new TokenwardenError("invalid_config", "authorizationUrl: is required to authorize", {
      field: "authorizationUrl",
    });
  }
  const url = new URL(config.authorizationUrl);
  const state = input.state ?? generateState();
  for (const [name, value] of Object.entries(config.authorizationParams))
    url.searchParams.set(name, value);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", config.clientId);
  url.searchParams.set("redirect_uri", input.redirectUri);
  if (config.scopes.length > 0 && !url.searchParams.has("scope")) {
    url.searchParams.set("scope", config.scopes.join(config.scopeSeparator));
  }
  url.searchParams.set("state", state);
  // RFC 8707 §2: each resource as its own field.
  url.searchParams.delete("resource");
  for (const resource of config.resource ?? []) url.searchParams.append("resource", resource);
  if (!config.pkce) return { url, state };
  const codeVerifier = input.codeVerifier ?? generateCodeVerifier();
  url.searchParams.set("code_challenge", calculateCodeChallenge(codeVerifier));
  url.searchParams.set("code_challenge_method", "S256");
  return { url, state, codeVerifier };
}

/**
 * Reads the redirect back (RFC 6749 §4.1.2 and §4.1.2.1). The state is checked
 * before anything else: a response that does not carry ours is not ours to read.
 */
export function readAuthorizationResponse(
  params: URLSearchParams,
  expectedState: string,
  server?: Pick<ServerMetadata, "issuer" | "authorization_response_iss_parameter_supported">,
): { code: string } {
  const state = params.get("state");
  if (state === null || !constantTimeEqual(state, expectedState)) {
    throw new TokenwardenError(
      "conflict",
      "the authorization response's state does not match this authorization",
      {
        field: "state",
      },
    );
  }
  if (server !== undefined) checkIssuer(params.get("iss"), server);
  const error = params.get("error");
  if (error !== null) {
    const description = params.get("error_description") ?? undefined;
    return throwAuthorizationError(error, description);
  }
  const code = params.get("code");
  if (code === null || code === "") {
    throw new TokenwardenError("token_response_invalid", "the authorization response has no code", {
      field: "code",
    });
  }
  return { code };
}

/**
 * RFC 9207 §2.4: a response naming another issuer came from another server (a mix-up
 * attack): its code must not be redeemed here. One without `iss` from a server that
 * advertises sending it is refused too; otherwise its absence is allowed.
 */
function checkIssuer(
  iss: string | null,
  server: Pick<ServerMetadata, "issuer" | "authorization_response_iss_parameter_supported">,
): void {
  if (iss === null) {
    if (server.authorization_response_iss_parameter_supported === true) {
      throw new TokenwardenError(
        "conflict",
        "the authorization response has no iss, which this server sends (RFC 9207): refused",
        { field: "iss" },
      );
    }
    return;
  }
  // Exact comparison (RFC 9207 §2.4: simple string comparison).
  if (iss !== server.issuer) {
    throw new TokenwardenError(
      "conflict",
      `the authorization response comes from issuer ${iss}, not ${server.issuer} (RFC 9207): refused`,
      { field: "iss" },
    );
  }
}

function throwAuthorizationError(error: string, description: string | undefined): never {
  throw new TokenwardenError(
    "token_endpoint_error",
    `the authorization server answered ${error}${description === undefined ? "" : ` (${description})`}`,
    {
      oauthError: error,
      ...(description === undefined ? {} : { oauthErrorDescription: description }),
    },
  );
}

/** Compares digests so that neither the length nor the content leaks through timing. */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}
