/**
 * The token endpoint (RFC 6749 §3.2), one function per grant, named after the step
 * of the spec it performs. Each takes the integration as one connection sees it.
 */
import { type Clock, systemClock } from "../core/clock.js";
import { invalidConfig } from "../core/errors.js";
import { expiryFor } from "../core/refresh-policy.js";
import type { ResolvedIntegration } from "../core/resolve.js";
import type { TokenSet } from "../core/token-set.js";
import { type ClientAuthMemory, withClientAuth } from "./auto-auth.js";
import {
  applyClientAuthentication,
  type ClientCredentials,
  type ConcreteClientAuthMethod,
} from "./client-auth.js";
import { asksForNonce, type DpopContext, dpopProof } from "./dpop.js";
import {
  describeEndpoint,
  type HttpClient,
  type HttpRequest,
  type HttpResponse,
  sendHttpRequest,
  type TransportSettings,
} from "./http.js";
import { introspectToken } from "./introspection.js";
import { numberOf, parseTokenResponse, valueAtPath } from "./token-response.js";

export type TokenEndpointConfig = Pick<
  ResolvedIntegration,
  | "tokenUrl"
  | "tokenMethod"
  | "clientAuth"
  | "clientId"
  | "clientSecret"
  | "scopes"
  | "scopeSeparator"
  | "tokenParams"
  | "refreshParams"
  | "tokenHeaders"
  | "tls"
  | "proxyUrl"
  | "timeoutMs"
  | "responseMap"
  | "session"
  | "fixedTtlSeconds"
  | "refreshAheadSeconds"
  | "clientPrivateKey"
  | "clientKeyId"
  | "clientKeyAlg"
  | "resource"
  | "introspectionUrl"
  | "server"
>;

/**
 * Like oauth4webapi's `customFetch`: `http` is the client whose pools a call goes
 * through (a `Tokenwarden` passes its own). Without one, the call opens a connection
 * of its own and closes it when done.
 */
export interface ProtocolOptions {
  clock?: Clock;
  maxResponseBytes?: number;
  http?: HttpClient;
  /** DPoP (RFC 9449): the connection's key, and the server nonces seen so far. */
  dpop?: DpopContext;
  /** Where `clientAuth: auto` keeps what the server accepted (auto-auth.ts). */
  clientAuthMemory?: ClientAuthMemory;
}

/** RFC 6749 §4.1.3: exchanges an authorization code (with its PKCE verifier, RFC 7636 §4.5). */
export function exchangeAuthorizationCode(
  config: TokenEndpointConfig,
  grant: { code: string; redirectUri: string; codeVerifier?: string | undefined },
  options?: ProtocolOptions,
): Promise<TokenSet> {
  const params: Record<string, string> = {
    grant_type: "authorization_code",
    code: grant.code,
    redirect_uri: grant.redirectUri,
  };
  if (grant.codeVerifier !== undefined) params.code_verifier = grant.codeVerifier;
  return requestToken(config, params, "grant", options);
}

/** RFC 6749 §4.4.2. */
export function requestClientCredentialsGrant(
  config: TokenEndpointConfig,
  options?: ProtocolOptions,
): Promise<TokenSet> {
  return requestToken(
    config,
    withScope(config, { grant_type: "client_credentials" }),
    "grant",
    options,
  );
}

/** RFC 6749 §4.3.2. */
export function requestPasswordGrant(
  config: TokenEndpointConfig,
  owner: { username: string; password: string },
  options?: ProtocolOptions,
): Promise<TokenSet> {
  const params = { grant_type: "password", username: owner.username, password: owner.password };
  return requestToken(config, withScope(config, params), "grant", options);
}

/**
 * RFC 6749 §6. No `scope` is sent, which asks for the scope originally granted. The
 * caller keeps the old refresh token when the response has none (RFC 6749 §6 again).
 */
export function refreshAccessToken(
  config: TokenEndpointConfig,
  refreshToken: string,
  options?: ProtocolOptions,
): Promise<TokenSet> {
  return requestToken(
    config,
    { grant_type: "refresh_token", refresh_token: refreshToken },
    "refresh",
    options,
  );
}

function withScope(
  config: TokenEndpointConfig,
  params: Record<string, string>,
): Record<string, string> {
  return config.scopes.length === 0
    ? params
    : { ...params, scope: config.scopes.join(config.scopeSeparator) };
}

/**
 * Sends one token request. `tokenParams` go with every request and `refreshParams`
 * with refreshes; both may override a standard field of the same name, for servers
 * that want it spelled their way. A `GET` token endpoint gets every field in the
 * query string (some providers' "access token verb" is GET).
 */
export async function requestToken(
  config: TokenEndpointConfig,
  grantParams: Record<string, string>,
  kind: "grant" | "refresh",
  options: ProtocolOptions = {},
): Promise<TokenSet> {
  const tokenUrl = requiredEndpoint(config.tokenUrl, "tokenUrl");
  const sent = withClientAuth(config, options.clientAuthMemory, (method) =>
    sendTokenRequest(config, tokenUrl, method, grantParams, kind, options),
  );
  // Chained, not awaited: no frame kept for every request in flight.
  return config.introspectionUrl === undefined
    ? sent
    : sent.then((token) => withIntrospectedExpiry(config, token, options));
}

async function sendTokenRequest(
  config: TokenEndpointConfig,
  tokenUrl: string,
  method: ConcreteClientAuthMethod,
  grantParams: Record<string, string>,
  kind: "grant" | "refresh",
  options: ProtocolOptions,
): Promise<TokenSet> {
  const url = new URL(tokenUrl);
  const clock = options.clock ?? systemClock;
  const headers: Record<string, string> = {
    accept: "application/json",
    ...lowerCaseKeys(config.tokenHeaders),
  };
  const params = new URLSearchParams(grantParams);
  // RFC 8707 §2.2: the resources the token is for, one field each.
  for (const resource of config.resource ?? []) params.append("resource", resource);
  const extras =
    kind === "refresh" ? { ...config.tokenParams, ...config.refreshParams } : config.tokenParams;
  for (const [name, value] of Object.entries(extras)) params.set(name, value);
  await applyClientAuthentication(
    method,
    config,
    { headers, params, query: url.searchParams },
    { audience: tokenAudience(config), now: clock.now() },
  );

  let body: string | undefined;
  if (config.tokenMethod === "GET") {
    for (const [name, value] of params) url.searchParams.append(name, value);
  } else {
    body = params.toString();
    headers["content-type"] = "application/x-www-form-urlencoded";
  }
  const what = `token endpoint ${describeEndpoint(url)}`;
  const sent = sendWithDpop({ method: config.tokenMethod, url, headers, body }, config, {
    what,
    ...options,
  });
  return sent.then((res) => parseTokenResponse(res, config, clock, what));
}

/**
 * A token response without a lifetime (RFC 6749 §5.1 makes `expires_in` optional)
 * gets its expiry from introspection (RFC 7662 `exp`) when the server offers it.
 */
async function withIntrospectedExpiry(
  config: TokenEndpointConfig,
  token: TokenSet,
  options: ProtocolOptions,
): Promise<TokenSet> {
  if (config.introspectionUrl === undefined || config.session === "fixed") return token;
  const map = config.responseMap;
  const said =
    numberOf(valueAtPath(token.raw, map.expiresIn ?? "expires_in")) !== undefined ||
    (map.expiresAt !== undefined && valueAtPath(token.raw, map.expiresAt) !== undefined);
  if (said) return token;
  const found = await introspectToken(config, token.accessToken, "access_token", options);
  if (!found.active || found.exp === undefined) return token;
  return {
    ...token,
    expiresAt: expiryFor({ expiresAtMs: found.exp * 1000 }, config, token.issuedAt),
  };
}

/** The `aud` of a client assertion: the token endpoint (RFC 7523 §3), else the issuer. */
export function tokenAudience(config: {
  tokenUrl?: string | undefined;
  server?: { issuer: string } | undefined;
}): string {
  return config.tokenUrl ?? config.server?.issuer ?? "";
}

/**
 * A form POST to an endpoint beside the token endpoint (revocation, introspection,
 * device authorization): the integration's token headers, and the client
 * authenticated with `method` as it is at the token endpoint.
 */
export async function authenticatedFormPost(
  config: ClientCredentials & {
    tokenHeaders: Record<string, string>;
    tokenUrl?: string | undefined;
    server?: { issuer: string } | undefined;
  },
  endpoint: string,
  fields: URLSearchParams,
  method: ConcreteClientAuthMethod,
  now: number,
): Promise<HttpRequest> {
  const url = new URL(endpoint);
  const headers: Record<string, string> = {
    accept: "application/json",
    ...lowerCaseKeys(config.tokenHeaders),
    "content-type": "application/x-www-form-urlencoded",
  };
  await applyClientAuthentication(
    method,
    config,
    { headers, params: fields, query: url.searchParams },
    { audience: tokenAudience(config), now },
  );
  return { method: "POST", url, headers, body: fields.toString() };
}

/** An endpoint the integration (or its discovery) must have given. */
export function requiredEndpoint(value: string | undefined, field: string): string {
  if (value === undefined) {
    throw invalidConfig(field, "is not set, and discovery did not provide it");
  }
  return value;
}

/**
 * Sends a request to the authorization server, with a DPoP proof when the connection
 * binds its tokens, and once more with the server's nonce when it asks for one
 * (RFC 9449 §8). Without DPoP it is one `sendHttpRequest`.
 */
export async function sendWithDpop(
  req: HttpRequest,
  settings: TransportSettings,
  options: ProtocolOptions & { what: string },
): Promise<HttpResponse> {
  const limits = {
    what: options.what,
    ...(options.maxResponseBytes === undefined
      ? {}
      : { maxResponseBytes: options.maxResponseBytes }),
    ...(options.http === undefined ? {} : { http: options.http }),
  };
  const { dpop } = options;
  if (dpop === undefined) return sendHttpRequest(req, settings, limits);
  for (let attempt = 0; ; attempt++) {
    // The proof's iat is judged by the server's clock: real time, not an injected one.
    const proof = await dpopProof(dpop, { method: req.method, url: req.url }, Date.now());
    const res = await sendHttpRequest(
      { ...req, headers: { ...req.headers, dpop: proof } },
      settings,
      limits,
    );
    const learned = dpop.nonces.learn(req.url, res.headers);
    if (attempt > 0 || learned === undefined || !asksForNonce(res.status, res.body)) return res;
  }
}

export function lowerCaseKeys(record: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(record)) out[name.toLowerCase()] = value;
  return out;
}
