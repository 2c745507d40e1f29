/**
 * An integration as one connection sees it: every `{parameter}` replaced by the
 * connection's value and the connection's client id and secret in place of the
 * integration's. This is what the protocol client and the API caller work from.
 */
import { type Connection, checkConnectionAgainst } from "./connection.js";
import { invalidConfig } from "./errors.js";
import { type Integration, isHttpUrl, isUrlHook, NON_TEMPLATE_FIELDS } from "./integration.js";
import type { ServerMetadata } from "./server-metadata.js";
import { expandTemplatesDeep, TOKEN_PLACEHOLDER } from "./template.js";
import { expandUrlTemplate } from "./url-template.js";

export type ResolvedIntegration = Integration & {
  readonly clientId: string;
  /** The authorization server's metadata, once `discoveryUrl` was read (broker). */
  server?: ServerMetadata;
};

/** The client id of an MCP server's integration that names none, until the broker finds one. */
export const MCP_CLIENT_TO_FIND = "";

/** Fields that are URLs: their values are fitted to the URL part they land in. */
const URL_FIELDS = [
  "authorizationUrl",
  "tokenUrl",
  "revocationUrl",
  "apiBaseUrl",
  "proxyUrl",
  "discoveryUrl",
  "introspectionUrl",
] as const;

export function resolveIntegration(
  integration: Integration,
  connection: Connection,
): ResolvedIntegration {
  checkConnectionAgainst(integration, connection);
  const values = connection.parameters;
  const expanded = expandTemplatesDeep(integration, values, {
    keep: [TOKEN_PLACEHOLDER],
    skip: [...NON_TEMPLATE_FIELDS, ...URL_FIELDS, "refreshHook"],
  });
  for (const field of URL_FIELDS) {
    const template = integration[field];
    if (template === undefined) continue;
    const value = expandUrlTemplate(template, values, field);
    if (!isHttpUrl(value)) {
      throw invalidConfig(field, "must be an absolute http(s) URL once parameters are filled in");
    }
    expanded[field] = value;
  }
  const hook = integration.refreshHook;
  // A module path is not a template (the schema refuses placeholders in it).
  if (hook !== undefined && isUrlHook(hook))
    expanded.refreshHook = expandUrlTemplate(hook, values, "refreshHook");
  // checkConnectionAgainst has made sure one of the two is set, or that the integration
  // is an MCP server's, whose client the broker finds (MCP_CLIENT_TO_FIND until then).
  const clientId = connection.clientId ?? integration.clientId ?? MCP_CLIENT_TO_FIND;
  const mcp = integration.mcpServerUrl;
  return {
    ...expanded,
    // An MCP server is the API its tokens are for (broker/mcp-servers.ts).
    ...(mcp === undefined
      ? {}
      : { apiBaseUrl: expanded.apiBaseUrl ?? mcp, resource: expanded.resource ?? [mcp] }),
    clientId,
    clientSecret: connection.clientSecret ?? integration.clientSecret,
  };
}

/**
 * Resolutions made once per integration for the connections that add nothing to it
 * (no parameters, no client of their own): theirs is the same for all, and a storm
 * of renewals resolves thousands of them against one integration read. Keyed by the
 * integration object, so a changed integration (a new read) is resolved again. The
 * result is shared: nothing writes to a resolved integration.
 */
export class IntegrationResolver {
  readonly #plain = new WeakMap<Integration, ResolvedIntegration>();

  resolve(integration: Integration, connection: Connection): ResolvedIntegration {
    if (!addsNothing(connection)) return resolveIntegration(integration, connection);
    checkConnectionAgainst(integration, connection);
    let resolved = this.#plain.get(integration);
    if (resolved === undefined) {
      resolved = resolveIntegration(integration, connection);
      this.#plain.set(integration, resolved);
    }
    return resolved;
  }
}

function addsNothing(connection: Connection): boolean {
  if (connection.clientId !== undefined || connection.clientSecret !== undefined) return false;
  for (const _ in connection.parameters) return false;
  return true;
}
