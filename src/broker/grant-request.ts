/**
 * The requests that obtain a token without a previous one (a grant that needs no
 * person), and the refresh hook's run: what the renewer sends, apart from refreshes.
 */
import { TokenwardenError } from "../core/errors.js";
import type { TokenSet } from "../core/token-set.js";
import { requestJwtBearerGrant, requestTokenExchange } from "../oauth/extension-grants.js";
import type { RefreshHooks } from "../oauth/refresh-hook.js";
import {
  type ProtocolOptions,
  requestClientCredentialsGrant,
  requestPasswordGrant,
} from "../oauth/token-endpoint.js";
import type { Loaded } from "./loaded.js";

export function runHook(hooks: RefreshHooks, loaded: Loaded, now: () => number): Promise<TokenSet> {
  const { resolved } = loaded;
  const { token, connection } = loaded.stored;
  return hooks.run(
    resolved,
    {
      clientId: resolved.clientId,
      clientSecret: resolved.clientSecret,
      refreshToken: token?.refreshToken ?? connection.refreshToken,
      accessToken: token?.accessToken,
      tokenUrl: resolved.tokenUrl ?? "",
      scope:
        token?.scope ??
        (resolved.scopes.length > 0 ? resolved.scopes.join(resolved.scopeSeparator) : undefined),
      parameters: connection.parameters,
    },
    now,
  );
}

/** A grant that needs no previous token. */
export async function requestGrant(
  loaded: Loaded,
  options: ProtocolOptions,
  subjectToken: ((connectionId: string) => Promise<string>) | undefined,
): Promise<TokenSet> {
  const { integration, resolved } = loaded;
  const { connection } = loaded.stored;
  switch (integration.grantType) {
    case "client_credentials":
      return requestClientCredentialsGrant(resolved, options);
    case "password":
      return requestPasswordGrant(
        resolved,
        { username: connection.username as string, password: connection.password as string },
        options,
      );
    case "jwt_bearer":
      return requestJwtBearerGrant(resolved, options);
    case "token_exchange": {
      if (connection.subjectToken === undefined && subjectToken === undefined)
        throw new TokenwardenError("internal_error", "token exchange needs the broker's getToken");
      const subject =
        connection.subjectToken ??
        (await (subjectToken as (id: string) => Promise<string>)(
          connection.subjectConnectionId as string,
        ));
      return requestTokenExchange(resolved, subject, options);
    }
    case "refresh_token":
    case "authorization_code":
    case "device_code":
      throw new TokenwardenError(
        "needs_reauth",
        `connection ${connection.id} has no refresh token; authorize it again`,
      );
  }
}
