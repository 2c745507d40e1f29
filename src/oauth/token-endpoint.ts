import { type Clock, systemClock } from "../core/clock.js";
import type { ResolvedIntegration } from "../core/resolve.js";
import type { TokenSet } from "../core/token-set.js";
import { applyClientAuthentication } from "./client-auth.js";
import { asksForNonce, type DpopContext, dpopProof } from "./dpop.js";
import {
  describeEndpoint,
  type HttpClient,
  type HttpRequest,
  type HttpResponse,
  sendHttpRequest,
  type TransportSettings,
} from "./http.js";
import { parseTokenResponse } from "./token-response.js";

/**
 * The token endpoint (RFC 6749 §3.2), one function per grant, named after the step
 * of the spec it performs. Each takes the integration as one connection sees it.
 */
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
 * query string (seed 003's "Access Token Verb").
 */
export async function requestToken(
  config: TokenEndpointConfig,
  grantParams: Record<string, string>,
  kind: "grant" | "refresh",
  options: ProtocolOptions = {},
): Promise<TokenSet> {
  const url = new URL(config.tokenUrl);
  const headers: Record<string, string> = {
    accept: "application/json",
    ...lowerCaseKeys(config.tokenHeaders),
  };
  const params = new URLSearchParams(grantParams);
  const extras =
    kind === "refresh" ? { ...config.tokenParams, ...config.refreshParams } : config.tokenParams;
  for (const [name, value] of Object.entries(extras)) params.set(name, value);
  applyClientAuthentication(config.clientAuth, config, {
    headers,
    params,
    query: url.searchParams,
  });

  let body: string | undefined;
  if (config.tokenMethod === "GET") {
    for (const [name, value] of params) url.searchParams.append(name, value);
  } else {
    body = params.toString();
    headers["content-type"] = "application/x-www-form-urlencoded";
  }
  const what = `token endpoint ${describeEndpoint(url)}`;
  const res = await sendWithDpop({ method: config.tokenMethod, url, headers, body }, config, {
    what,
    ...options,
  });
  return parseTokenResponse(res, config, options.clock ?? systemClock, what);
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
