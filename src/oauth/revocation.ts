import { systemClock } from "../core/clock.js";
import { invalidConfig } from "../core/errors.js";
import type { ResolvedIntegration } from "../core/resolve.js";
import { withClientAuth } from "./auto-auth.js";
import { describeEndpoint } from "./http.js";
import { authenticatedFormPost, type ProtocolOptions, sendWithDpop } from "./token-endpoint.js";
import { parseResponseBody, tokenEndpointError } from "./token-response.js";

export type RevocationConfig = Pick<
  ResolvedIntegration,
  | "revocationUrl"
  | "clientAuth"
  | "clientId"
  | "clientSecret"
  | "tokenHeaders"
  | "tls"
  | "proxyUrl"
  | "timeoutMs"
  | "responseMap"
  | "tokenUrl"
  | "clientPrivateKey"
  | "clientKeyId"
  | "clientKeyAlg"
  | "server"
>;

/**
 * RFC 7009 §2.1. A 200 means the token is gone, including when the server did not
 * know it (§2.2): revocation is idempotent. Returns the status the server answered.
 */
export async function revokeToken(
  config: RevocationConfig,
  token: string,
  tokenTypeHint: "access_token" | "refresh_token",
  options: ProtocolOptions = {},
): Promise<{ status: number }> {
  if (config.revocationUrl === undefined) throw invalidConfig("revocationUrl", "is not set");
  const endpoint = config.revocationUrl;
  const now = (options.clock ?? systemClock).now();
  return withClientAuth(config, options.clientAuthMemory, async (method) => {
    const params = new URLSearchParams({ token, token_type_hint: tokenTypeHint });
    const req = await authenticatedFormPost(config, endpoint, params, method, now);
    const what = `revocation endpoint ${describeEndpoint(req.url)}`;
    const res = await sendWithDpop(req, config, { what, ...options });
    if (res.status >= 200 && res.status <= 299) return { status: res.status };
    throw tokenEndpointError(res, parseResponseBody(res), config.responseMap, what);
  });
}
