import { z } from "zod";
import { MAX_LIFETIME_SECONDS } from "./refresh-policy.js";
import { placeholdersDeep, placeholdersIn, TOKEN_PLACEHOLDER } from "./template.js";
import { parseOrThrow } from "./validation.js";

/** Integration keys and connection ids (PRODUCT.md). */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const PARAMETER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

export const GRANT_TYPES = [
  "authorization_code",
  "client_credentials",
  "password",
  "refresh_token",
] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

export const CLIENT_AUTH_METHODS = ["basic", "basic_raw", "body", "query"] as const;
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];

export const SESSION_MODES = ["auto", "fixed", "none"] as const;
export type SessionMode = (typeof SESSION_MODES)[number];

export const idSchema = z
  .string()
  .regex(
    ID_PATTERN,
    "must start with a letter or digit and hold only letters, digits, _ and - (at most 64)",
  );

/**
 * A URL that may hold `{parameter}` placeholders: it must be an absolute http(s) URL
 * once each placeholder is replaced by a plausible value.
 */
export const urlTemplateSchema = z.string().refine(isHttpUrlTemplate, {
  message: "must be an absolute http(s) URL",
});

export function isHttpUrlTemplate(value: string): boolean {
  return isHttpUrl(value.replace(/\{[A-Za-z_][A-Za-z0-9_.-]*\}/g, "x"));
}

export function isHttpUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const { protocol, hostname } = new URL(value);
  return (protocol === "http:" || protocol === "https:") && hostname !== "";
}

const stringRecord = z.record(z.string(), z.string());

/** Scopes as a list, or as one string split on commas and whitespace (forgiving input). */
const scopesSchema = z
  .preprocess(
    (v) => (typeof v === "string" ? v.split(/[\s,]+/).filter((s) => s !== "") : v),
    z.array(z.string().min(1, "must not be empty")),
  )
  .default([]);

const tokenPlacementSchema = z
  .strictObject({
    in: z.enum(["header", "query"]).default("header"),
    name: z.string().min(1, "must not be empty").optional(),
    template: z.string().optional(),
  })
  .transform((p) => ({
    in: p.in,
    name: p.name ?? (p.in === "header" ? "Authorization" : "access_token"),
    template: p.template ?? (p.in === "header" ? "Bearer {token}" : "{token}"),
  }))
  .refine((p) => placeholdersIn(p.template).includes(TOKEN_PLACEHOLDER), {
    message: "must contain {token}",
    path: ["template"],
  });

const tlsSchema = z
  .strictObject({
    mode: z.enum(["verify", "trust", "off"]).default("verify"),
    ca: z.string().optional(),
    cert: z.string().optional(),
    key: z.string().optional(),
  })
  .superRefine((tls, ctx) => {
    if (tls.mode === "trust" && tls.ca === undefined) {
      ctx.addIssue({ code: "custom", path: ["ca"], message: "is required when mode is trust" });
    }
    if ((tls.cert === undefined) !== (tls.key === undefined)) {
      const missing = tls.cert === undefined ? "cert" : "key";
      ctx.addIssue({
        code: "custom",
        path: [missing],
        message: "mutual TLS needs both cert and key",
      });
    }
    for (const field of ["ca", "cert"] as const) {
      const pem = tls[field];
      if (pem !== undefined && !pem.includes("-----BEGIN CERTIFICATE-----")) {
        ctx.addIssue({ code: "custom", path: [field], message: "must be a PEM certificate" });
      }
    }
    if (tls.key !== undefined && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(tls.key)) {
      ctx.addIssue({ code: "custom", path: ["key"], message: "must be a PEM private key" });
    }
  });

const responsePathSchema = z
  .string()
  .regex(/^[^.\s]+(\.[^.\s]+)*$/, "must be a dotted path such as data.access_token");

/**
 * Where a non-standard server puts the standard fields. `expiresAt` names an absolute
 * expiry (epoch seconds, epoch milliseconds or an ISO 8601 date) instead of a lifetime.
 */
const responseMapSchema = z.strictObject({
  accessToken: responsePathSchema.optional(),
  tokenType: responsePathSchema.optional(),
  expiresIn: responsePathSchema.optional(),
  expiresAt: responsePathSchema.optional(),
  refreshToken: responsePathSchema.optional(),
  scope: responsePathSchema.optional(),
  error: responsePathSchema.optional(),
  errorDescription: responsePathSchema.optional(),
});
export type ResponseMap = z.output<typeof responseMapSchema>;

const integrationObjectSchema = z.strictObject({
  key: idSchema,
  displayName: z.string().min(1).max(200).optional(),
  grantType: z.enum(GRANT_TYPES),
  authorizationUrl: urlTemplateSchema.optional(),
  tokenUrl: urlTemplateSchema,
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
  tokenHeaders: stringRecord.default({}),
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
  tokenPlacement: tokenPlacementSchema.prefault({}),
  requestParams: z
    .strictObject({ headers: stringRecord.default({}), query: stringRecord.default({}) })
    .prefault({}),
  session: z.enum(SESSION_MODES).default("auto"),
  fixedTtlSeconds: z.number().int().positive().max(MAX_LIFETIME_SECONDS).default(3600),
  refreshAheadSeconds: z.number().int().nonnegative().max(MAX_LIFETIME_SECONDS).default(60),
  retryOn: z.array(z.number().int().min(100).max(599)).default([401, 403]),
  expiredBodyPattern: z.string().refine(isRegExp, "must be a valid regular expression").optional(),
  refreshHook: z
    .string()
    .refine(
      (v) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(v) || v.startsWith("https://") || isLoopbackHttp(v),
      "must be a module path or an https:// URL",
    )
    .optional(),
  tls: tlsSchema.prefault({}),
  proxyUrl: z.string().refine(isHttpUrl, "must be an absolute http(s) URL").optional(),
  timeoutMs: z.number().int().min(1).max(300_000).default(10_000),
  responseMap: responseMapSchema.default({}),
});

/** Paths whose strings are not templates: a regular expression and PEM blocks. */
export const NON_TEMPLATE_FIELDS = ["expiredBodyPattern", "tls"] as const;

export const integrationSchema = integrationObjectSchema.superRefine((integration, ctx) => {
  if (
    integration.grantType === "authorization_code" &&
    integration.authorizationUrl === undefined
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["authorizationUrl"],
      message: "is required for grantType authorization_code",
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
});

/** Fields of an integration that are secrets: stored sealed, never returned. */
export const INTEGRATION_SECRET_FIELDS = ["clientSecret"] as const;

export type IntegrationInput = z.input<typeof integrationSchema>;
export type Integration = z.output<typeof integrationSchema>;

/** Validates and normalizes an integration; throws `invalid_config` naming each field. */
export function parseIntegration(input: unknown): Integration {
  return parseOrThrow(integrationSchema, input);
}

function isRegExp(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

/** Plain http is allowed for a hook on this machine only (a sidecar); anywhere else, https. */
function isLoopbackHttp(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  return url.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
}
