import { type Connection, checkConnectionAgainst } from "./connection.js";
import { invalidConfig } from "./errors.js";
import { type Integration, isHttpUrl, NON_TEMPLATE_FIELDS } from "./integration.js";
import { expandTemplatesDeep, TOKEN_PLACEHOLDER } from "./template.js";

/**
 * An integration as one connection sees it: every `{parameter}` replaced by the
 * connection's value and the connection's client id and secret in place of the
 * integration's. This is what the protocol client and the API caller work from.
 */
export type ResolvedIntegration = Integration & { readonly clientId: string };

const URL_FIELDS = ["authorizationUrl", "tokenUrl", "revocationUrl", "apiBaseUrl"] as const;

export function resolveIntegration(
  integration: Integration,
  connection: Connection,
): ResolvedIntegration {
  checkConnectionAgainst(integration, connection);
  const expanded = expandTemplatesDeep(integration, connection.parameters, {
    keep: [TOKEN_PLACEHOLDER],
    skip: NON_TEMPLATE_FIELDS,
  });
  for (const field of URL_FIELDS) {
    const value = expanded[field];
    if (value !== undefined && !isHttpUrl(value)) {
      throw invalidConfig(field, "must be an absolute http(s) URL once parameters are filled in");
    }
  }
  // checkConnectionAgainst has made sure one of the two is set.
  const clientId = (connection.clientId ?? integration.clientId) as string;
  return {
    ...expanded,
    clientId,
    clientSecret: connection.clientSecret ?? integration.clientSecret,
  };
}
