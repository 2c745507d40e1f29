import { systemClock } from "../core/clock.js";
import { TokenwardenError } from "../core/errors.js";
import { ACCESS_TOKEN_TYPE } from "../core/integration.js";
import type { ResolvedIntegration } from "../core/resolve.js";
import type { TokenSet } from "../core/token-set.js";
import { clientAuthCandidates } from "./auto-auth.js";
import { describeEndpoint } from "./http.js";
import { signAssertion } from "./jwt-assertion.js";
import {
  authenticatedFormPost,
  type ProtocolOptions,
  requestToken,
  sendWithDpop,
} from "./token-endpoint.js";
import { parseResponseBody, tokenEndpointError } from "./token-response.js";

/** The grants after RFC 6749, each a token request with its own parameters. */

export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
export const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";

function scopeOf(
  config: Pick<ResolvedIntegration, "scopes" | "scopeSeparator">,
): Record<string, string> {
  return config.scopes.length === 0 ? {} : { scope: config.scopes.join(config.scopeSeparator) };
}

/** RFC 7523 §2.1: a freshly signed assertion in exchange for a token. */
export async function requestJwtBearerGrant(
  config: ResolvedIntegration,
  options: ProtocolOptions = {},
): Promise<TokenSet> {
  const assertion = await signAssertion(config, (options.clock ?? systemClock).now());
  return requestToken(
    config,
    { grant_type: JWT_BEARER_GRANT, assertion, ...scopeOf(config) },
    "grant",
    options,
  );
}

/** RFC 8693 §2.1: another token (the subject) in exchange for one for this integration. */
export function requestTokenExchange(
  config: ResolvedIntegration,
  subjectToken: string,
  options: ProtocolOptions = {},
): Promise<TokenSet> {
  const params: Record<string, string> = {
    grant_type: TOKEN_EXCHANGE_GRANT,
    subject_token: subjectToken,
    subject_token_type: config.subjectTokenType ?? ACCESS_TOKEN_TYPE,
    ...scopeOf(config),
  };
  if (config.requestedTokenType !== undefined)
    params.requested_token_type = config.requestedTokenType;
  if (config.audience !== undefined) params.audience = config.audience;
  return requestToken(config, params, "grant", options);
}

/** RFC 8628 §3.2, as the service hands it on (times absolute). */
export interface DeviceAuthorization {
  deviceCode: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete: string | undefined;
  /** Epoch ms. */
  expiresAt: number;
  /** Seconds between polls (RFC 8628 §3.5: 5 when the server does not say). */
  interval: number;
}

/** RFC 8628 §3.1: asks for a device code and a user code. */
export async function requestDeviceAuthorization(
  config: ResolvedIntegration,
  options: ProtocolOptions = {},
): Promise<DeviceAuthorization> {
  if (config.deviceAuthorizationUrl === undefined)
    throw new TokenwardenError("invalid_config", "deviceAuthorizationUrl is not set", {
      field: "deviceAuthorizationUrl",
    });
  const params = new URLSearchParams(scopeOf(config));
  for (const [name, value] of Object.entries(config.tokenParams)) params.set(name, value);
  // `auto` has learned nothing for this endpoint yet: its first candidate.
  const method =
    config.clientAuth === "auto" ? (clientAuthCandidates(config)[0] ?? "basic") : config.clientAuth;
  // RFC 8628 §3.1: client_id goes in the body of a public client's request; confidential
  // clients authenticate as at the token endpoint, which the line below does.
  const req = await authenticatedFormPost(
    config,
    config.deviceAuthorizationUrl,
    params,
    method,
    Date.now(),
  );
  const what = `device authorization endpoint ${describeEndpoint(req.url)}`;
  const res = await sendWithDpop(req, config, { what, ...options, dpop: undefined });
  const body = parseResponseBody(res);
  if (res.status < 200 || res.status > 299 || body === undefined)
    throw tokenEndpointError(res, body, config.responseMap, what);
  const text = (name: string) =>
    typeof body[name] === "string" ? (body[name] as string) : undefined;
  const deviceCode = text("device_code");
  const userCode = text("user_code");
  const verificationUri = text("verification_uri") ?? text("verification_url");
  const expiresIn = Number(body.expires_in);
  if (
    deviceCode === undefined ||
    userCode === undefined ||
    verificationUri === undefined ||
    !(expiresIn > 0)
  )
    throw new TokenwardenError(
      "token_response_invalid",
      `${what} answered without device_code, user_code, verification_uri and expires_in`,
      { status: res.status },
    );
  const interval = Number(body.interval);
  return {
    deviceCode,
    userCode,
    verificationUri,
    verificationUriComplete: text("verification_uri_complete"),
    expiresAt: (options.clock ?? systemClock).now() + expiresIn * 1000,
    interval: Number.isInteger(interval) && interval > 0 ? interval : 5,
  };
}

/**
 * RFC 8628 §3.4: one poll. While the person has not approved, it fails with the
 * server's `authorization_pending` or `slow_down` (§3.5) as `oauthError`.
 */
export function pollDeviceToken(
  config: ResolvedIntegration,
  deviceCode: string,
  options: ProtocolOptions = {},
): Promise<TokenSet> {
  return requestToken(
    config,
    { grant_type: DEVICE_CODE_GRANT, device_code: deviceCode },
    "grant",
    options,
  );
}
