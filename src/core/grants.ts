/**
 * What each grant type needs beyond the fields every integration and connection has,
 * and what a person can do with a connection in each status. The admin page shapes its
 * forms and buttons from these (through `GET /v1/schemas`), so they live here, beside
 * the model, rather than in the page.
 */
import type { ConnectionInput, ConnectionStatus } from "./connection.js";
import type { GrantType, IntegrationInput } from "./integration.js";

export interface GrantFields {
  /** Integration fields only this grant uses. */
  integration: ReadonlyArray<keyof IntegrationInput>;
  /** Connection fields only this grant uses; `checkConnectionAgainst` requires each (token_exchange: one of its two). */
  connection: ReadonlyArray<keyof ConnectionInput>;
}

export const GRANT_FIELDS: Readonly<Record<GrantType, GrantFields>> = {
  // The browser leg: where to send the person, with PKCE and extra query parameters.
  authorization_code: {
    integration: ["authorizationUrl", "pkce", "authorizationParams"],
    connection: [],
  },
  client_credentials: { integration: [], connection: [] },
  password: { integration: [], connection: ["username", "password"] },
  refresh_token: { integration: [], connection: ["refreshToken"] },
  // A person approves on another device; the service polls the token endpoint.
  device_code: { integration: ["deviceAuthorizationUrl"], connection: [] },
  jwt_bearer: {
    integration: ["assertion", "clientPrivateKey", "clientKeyId", "clientKeyAlg"],
    connection: [],
  },
  token_exchange: {
    integration: ["subjectTokenType", "requestedTokenType", "audience"],
    connection: ["subjectConnectionId", "subjectToken"],
  },
};

/** The grants that obtain a token with no person present. */
export function isUnattendedGrant(grantType: GrantType): boolean {
  return (
    grantType === "client_credentials" ||
    grantType === "password" ||
    grantType === "jwt_bearer" ||
    grantType === "token_exchange"
  );
}

/** The grants a person starts (and must start again once the refresh token is gone). */
export function isPersonGrant(grantType: GrantType): boolean {
  return grantType === "authorization_code" || grantType === "device_code";
}

export interface ConnectionActions {
  /** Send a person through the authorization server's login and consent. */
  authorize: boolean;
  /** Renew the token now. */
  refresh: boolean;
  /** Revoke the tokens at the server and forget them. */
  revoke: boolean;
}

/**
 * The broker's rules, seen from a button: a pending or revoked connection holds no
 * token, so there is nothing to revoke; nor anything to refresh, unless the grant can
 * obtain a new token unattended (the broker does so on a revoked connection).
 */
export function connectionActions(
  status: ConnectionStatus,
  grantType: GrantType,
): ConnectionActions {
  const holdsToken = status !== "pending_authorization" && status !== "revoked";
  return {
    authorize: isPersonGrant(grantType),
    refresh: holdsToken || (status === "revoked" && isUnattendedGrant(grantType)),
    revoke: holdsToken,
  };
}
