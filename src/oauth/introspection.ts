import { invalidConfig, TokenwardenError } from "../core/errors.js";
import type { ResolvedIntegration } from "../core/resolve.js";
import { withClientAuth } from "./auto-auth.js";
import { describeEndpoint, sendHttpRequest } from "./http.js";
import { authenticatedFormPost, type ProtocolOptions } from "./token-endpoint.js";
import { numberOf, parseResponseBody, tokenEndpointError } from "./token-response.js";

export type IntrospectionConfig = Pick<
  ResolvedIntegration,
  | "introspectionUrl"
  | "tokenUrl"
  | "clientAuth"
  | "clientId"
  | "clientSecret"
  | "clientPrivateKey"
  | "clientKeyId"
  | "clientKeyAlg"
  | "tokenHeaders"
  | "tls"
  | "proxyUrl"
  | "timeoutMs"
  | "responseMap"
  | "server"
>;

export interface Introspection {
  active: boolean;
  /** Epoch seconds (RFC 7662 §2.2), when the server says. */
  exp?: number;
  scope?: string;
  raw: Record<string, unknown>;
}

/**
 * RFC 7662 §2.1, authenticated as the client authenticates at the token endpoint.
 * The answer's `active` is the only field a server must send.
 */
export async function introspectToken(
  config: IntrospectionConfig,
  token: string,
  tokenTypeHint: "access_token" | "refresh_token" = "access_token",
  options: ProtocolOptions = {},
): Promise<Introspection> {
  if (config.introspectionUrl === undefined) throw invalidConfig("introspectionUrl", "is not set");
  const endpoint = config.introspectionUrl;
  const what = `introspection endpoint ${describeEndpoint(new URL(endpoint))}`;
  const now = (options.clock ?? { now: Date.now }).now();
  return withClientAuth(config, options.clientAuthMemory, async (method) => {
    const params = new URLSearchParams({ token, token_type_hint: tokenTypeHint });
    const req = await authenticatedFormPost(config, endpoint, params, method, now);
    const res = await sendHttpRequest(req, config, { what, http: options.http });
    const body = parseResponseBody(res);
    if (res.status !== 200 || body === undefined) {
      throw tokenEndpointError(res, body, config.responseMap, what);
    }
    if (typeof body.active !== "boolean") {
      throw new TokenwardenError("token_response_invalid", `${what} answered without active`, {
        status: res.status,
      });
    }
    const exp = numberOf(body.exp);
    return {
      active: body.active,
      ...(exp === undefined ? {} : { exp }),
      ...(typeof body.scope === "string" ? { scope: body.scope } : {}),
      raw: body,
    };
  });
}
