/**
 * An integration: one OAuth 2.0 server and client, as configured. The schema is built
 * from its parts (integration-fields.ts, integration-client-auth.ts,
 * integration-grants.ts, hook-location.ts); this module puts them together, checks
 * what spans them, and parses.
 */
import { z } from "zod";
import { isLoopbackHost, refreshHookProblem } from "./hook-location.js";
import {
  CLIENT_AUTH_METHODS,
  checkClientAuth,
  clientKeyFields,
  tlsSchema,
} from "./integration-client-auth.js";
import {
  headerRecord,
  idSchema,
  isHttpUrl,
  originSchema,
  PARAMETER_NAME,
  responseMapSchema,
  scopesSchema,
  stringRecord,
  tokenPlacementSchema,
  urlTemplateSchema,
} from "./integration-fields.js";
import { GRANT_TYPES, grantFields, resourceUriSchema } from "./integration-grants.js";
import { compileLinearPattern, MAX_PATTERN_LENGTH } from "./linear-pattern.js";
import { MAX_LIFETIME_SECONDS } from "./refresh-policy.js";
import { placeholdersDeep, TOKEN_PLACEHOLDER } from "./template.js";
import { parseOrThrow } from "./validation.js";

export { isLoopbackHost, isUrlHook } from "./hook-location.js";
export {
  CLIENT_AUTH_METHODS,
  CLIENT_KEY_ALGORITHMS,
  CLIENT_KEY_ALGS,
  type ClientAuthMethod,
  type ClientKeyAlg,
  isPrivateKeyText,
} from "./integration-client-auth.js";
export {
  ID_PATTERN,
  idSchema,
  isHttpUrl,
  isHttpUrlTemplate,
  type ResponseMap,
  urlTemplateSchema,
} from "./integration-fields.js";
export {
  ACCESS_TOKEN_TYPE,
  DPOP_ALGORITHMS,
  GRANT_TYPES,
  type GrantType,
} from "./integration-grants.js";

export const SESSION_MODES = ["auto", "fixed", "none"] as const;
export type SessionMode = (typeof SESSION_MODES)[number];

const SERVER_AND_KEY_FIELDS = {
  /** A catalogue entry the integration started from (presets/catalogue.json). */
  preset: idSchema.optional(),
  /** An issuer, or its RFC 8414 / OpenID Connect metadata URL. */
  discoveryUrl: urlTemplateSchema.optional(),
  introspectionUrl: urlTemplateSchema.optional(),
  resource: z.array(resourceUriSchema).optional(),
  ...clientKeyFields,
  /** A remote MCP server this integration authorizes against (broker/mcp-servers.ts). */
  mcpServerUrl: z
    .string()
    .refine(isMcpServerUrl, "must be an https URL (http only on loopback), without {placeholders}")
    .describe(
      "A remote MCP server: its RFC 9728 metadata names the authorization server; grantType defaults to authorization_code, apiBaseUrl and resource to it, scopes to those it lists; without clientId a client is registered (RFC 7591) or described by the service's client ID metadata document",
    )
    .optional(),
};

/**
 * The grant an integration with `mcpServerUrl` and no `grantType` uses (and the only
 * one a missing grant may mean: without an MCP server it is required).
 */
const MCP_GRANT_TYPE = "authorization_code" satisfies (typeof GRANT_TYPES)[number];

/** RFC 9728 §3: a resource identifier is https; a test server or sidecar on this machine may be http. */
function isMcpServerUrl(value: string): boolean {
  if (value.includes("{") || !URL.canParse(value)) return false;
  const url = new URL(value);
  if (url.hash !== "" || value.includes("#")) return false;
  return url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHost(url.hostname));
}

/** The fields, each on its own; `integrationSchema` adds what spans them. */
export const integrationObjectSchema = z.strictObject({
  ...grantFields,
  key: idSchema,
  displayName: z.string().min(1).max(200).optional(),
  /** Required unless `mcpServerUrl` is given (then `authorization_code`). */
  grantType: z
    .enum(GRANT_TYPES)
    .describe("Required, except with mcpServerUrl, where it is authorization_code when left out")
    .optional(),
  authorizationUrl: urlTemplateSchema.optional(),
  /** Required unless `discoveryUrl` supplies it. */
  tokenUrl: urlTemplateSchema.optional(),
  revocationUrl: urlTemplateSchema.optional(),
  tokenMethod: z.enum(["POST", "GET"]).default("POST"),
  clientAuth: z.enum(CLIENT_AUTH_METHODS).default("basic"),
  clientId: z.string().min(1, "must not be empty").optional(),
  clientSecret: z.string().min(1, "must not be empty").optional(),
  scopes: scopesSchema,
  scopeSeparator: z.string().min(1, "must not be empty").default(" "),
  pkce: z.boolean().default(true),
  authorizationParams: stringRecord.default({}),
  tokenParams: stringRecord.default({}),
  refreshParams: stringRecord.default({}),
  tokenHeaders: headerRecord.default({}),
  parameters: z
    .array(
      z
        .string()
        .regex(PARAMETER_NAME, "must be a name of letters, digits, _, - and .")
        .refine((name) => name !== TOKEN_PLACEHOLDER, "{token} is reserved for the access token"),
    )
    .refine((names) => new Set(names).size === names.length, "must not repeat a name")
    .default([]),
  apiBaseUrl: urlTemplateSchema.optional(),
  /** Origins besides apiBaseUrl's where the library's fetch may send the token. */
  allowedApiOrigins: z.array(originSchema).default([]),
  tokenPlacement: tokenPlacementSchema.prefault({}),
  requestParams: z
    .strictObject({ headers: headerRecord.default({}), query: stringRecord.default({}) })
    .prefault({}),
  session: z.enum(SESSION_MODES).default("auto"),
  fixedTtlSeconds: z.number().int().positive().max(MAX_LIFETIME_SECONDS).default(3600),
  refreshAheadSeconds: z.number().int().nonnegative().max(MAX_LIFETIME_SECONDS).default(60),
  /** Keep-alive: refresh a connection nobody used at least this often (idle refresh tokens). */
  refreshAtLeastEverySeconds: z.number().int().min(60).max(MAX_LIFETIME_SECONDS).optional(),
  /**
   * How long before its refresh token expires a connection says so (webhook); left
   * out, REFRESH_TOKEN_WARNING_SECONDS (integrations stored before it existed too).
   */
  refreshTokenWarningSeconds: z.number().int().nonnegative().max(MAX_LIFETIME_SECONDS).optional(),
  retryOn: z.array(z.number().int().min(100).max(599)).default([401, 403]),
  expiredBodyPattern: z
    .string()
    .max(MAX_PATTERN_LENGTH)
    .superRefine((pattern, ctx) => {
      const compiled = compileLinearPattern(pattern);
      if (!compiled.ok) {
        ctx.addIssue({
          code: "custom",
          message: `must be a pattern RE2 accepts (no backreferences or lookaround): ${compiled.reason}`,
        });
      }
    })
    .optional(),
  refreshHook: z
    .string()
    .min(1, "must not be empty")
    .superRefine((hook, ctx) => {
      const problem = refreshHookProblem(hook);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    })
    .optional(),
  tls: tlsSchema.prefault({}),
  proxyUrl: z.string().refine(isHttpUrl, "must be an absolute http(s) URL").optional(),
  timeoutMs: z.number().int().min(1).max(300_000).default(10_000),
  responseMap: responseMapSchema.default({}),
  ...SERVER_AND_KEY_FIELDS,
});

/** Paths whose strings are not templates: a regular expression, PEM blocks, origins. */
export const NON_TEMPLATE_FIELDS = [
  "expiredBodyPattern",
  "tls",
  "allowedApiOrigins",
  "clientPrivateKey",
  "resource",
  "mcpServerUrl",
] as const;

/**
 * An integration as written: the fields, what spans them, and `grantType` filled in
 * for an MCP server. The published JSON Schema is this one's input, so it shows
 * `grantType` as optional and the check below names it when it is missing.
 */
export const integrationSchema = integrationObjectSchema
  .superRefine((integration, ctx) => {
    const discovered =
      integration.discoveryUrl !== undefined || integration.mcpServerUrl !== undefined;
    if (integration.grantType === undefined && integration.mcpServerUrl === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["grantType"],
        message: "is required (or set mcpServerUrl, which makes it authorization_code)",
      });
    }
    if (integration.tokenUrl === undefined && !discovered) {
      ctx.addIssue({
        code: "custom",
        path: ["tokenUrl"],
        message: "is required (or set discoveryUrl or mcpServerUrl)",
      });
    }
    checkClientAuth(integration, ctx);
    if (
      integration.grantType === "authorization_code" &&
      integration.authorizationUrl === undefined &&
      !discovered
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["authorizationUrl"],
        message:
          "is required for grantType authorization_code (or set discoveryUrl or mcpServerUrl)",
      });
    }
    const declared = new Set(integration.parameters);
    for (const { field, name } of placeholdersDeep(integration, { skip: NON_TEMPLATE_FIELDS })) {
      const allowedHere = name === TOKEN_PLACEHOLDER && field === "tokenPlacement.template";
      if (!allowedHere && !declared.has(name)) {
        ctx.addIssue({
          code: "custom",
          path: field.split("."),
          message: `uses {${name}}, which is not in parameters`,
        });
      }
    }
  })
  .transform((integration) => ({
    ...integration,
    grantType: integration.grantType ?? MCP_GRANT_TYPE,
  }))
  // The check above, as JSON Schema says it: a grant type, or an MCP server.
  .meta({ anyOf: [{ required: ["grantType"] }, { required: ["mcpServerUrl"] }] });

/** Fields of an integration that are secrets: stored sealed, never returned. */
export const INTEGRATION_SECRET_FIELDS = ["clientSecret", "clientPrivateKey"] as const;

export type IntegrationInput = z.input<typeof integrationSchema>;
export type Integration = z.output<typeof integrationSchema>;

/** Validates and normalizes an integration; throws `invalid_config` naming each field. */
export function parseIntegration(input: unknown): Integration {
  return parseOrThrow(integrationSchema, input);
}
