import { z } from "zod";
import { compileLinearPattern, MAX_PATTERN_LENGTH } from "./linear-pattern.js";
import { MAX_LIFETIME_SECONDS } from "./refresh-policy.js";
import { placeholdersDeep, placeholdersIn, TOKEN_PLACEHOLDER } from "./template.js";
import { CONTROL_CHARACTERS, misplacedPlaceholder, splitUrlTemplate } from "./url-template.js";
import { parseOrThrow } from "./validation.js";

/** Integration keys and connection ids (PRODUCT.md). */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const PARAMETER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

export const GRANT_TYPES = [
  "authorization_code",
  "client_credentials",
  "password",
  "refresh_token",
  // Protocol breadth (b): RFC 8628, RFC 7523 §2.1, RFC 8693.
  "device_code",
  "jwt_bearer",
  "token_exchange",
] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

export const CLIENT_AUTH_METHODS = [
  "basic",
  "basic_raw",
  "body",
  "query",
  // Protocol breadth (issue 16): see client-auth.ts.
  "auto",
  "client_secret_jwt",
  "private_key_jwt",
  "tls_client_auth",
  "none",
] as const;
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
 * once each placeholder is replaced by a plausible value, and hold placeholders only
 * where a value can be fitted (url-template.ts): host, port, path, query.
 */
export const urlTemplateSchema = z
  .string()
  .refine(isHttpUrlTemplate, { message: "must be an absolute http(s) URL" })
  .superRefine((value, ctx) => {
    const misplaced = misplacedPlaceholder(value);
    if (misplaced !== undefined) ctx.addIssue({ code: "custom", message: misplaced });
  });

export function isHttpUrlTemplate(value: string): boolean {
  const pieces = splitUrlTemplate(value);
  if (pieces === undefined) return false;
  const plausible = pieces
    .map(({ part, text }) =>
      text.replace(/\{[A-Za-z_][A-Za-z0-9_.-]*\}/g, part === "port" ? "1" : "x"),
    )
    .join("");
  return isHttpUrl(plausible);
}

/** Text that goes into an HTTP header: a control character (CR, LF above all) would split it. */
const headerTextSchema = z
  .string()
  .refine((v) => !CONTROL_CHARACTERS.test(v), "must not hold control characters");
/** RFC 9110 §5.1 field name. */
const headerNameSchema = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "must be a header name (RFC 9110 token)");
const headerRecord = z.record(headerNameSchema, headerTextSchema);

/** An origin (`https://api.example.com`, `http://127.0.0.1:8080`), kept in its normal form. */
const originSchema = z
  .string()
  .refine((v) => {
    if (!isHttpUrl(v)) return false;
    const url = new URL(v);
    return `${url.origin}/` === url.href || url.origin === v;
  }, "must be an origin: scheme, host and port only, such as https://api.example.com")
  .transform((v) => new URL(v).origin);

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
    name: headerTextSchema.min(1, "must not be empty").optional(),
    template: headerTextSchema.optional(),
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
  /** Where the refresh token's own lifetime is (`refresh_token_expires_in` by default). */
  refreshTokenExpiresIn: responsePathSchema.optional(),
  scope: responsePathSchema.optional(),
  error: responsePathSchema.optional(),
  errorDescription: responsePathSchema.optional(),
});
export type ResponseMap = z.output<typeof responseMapSchema>;

// Protocol breadth (b): device grant, JWT bearer, token exchange, DPoP, rate limits ----

/** RFC 7523 §3: the claims of a JWT bearer assertion; strings may hold `{parameter}`. */
const assertionSchema = z.strictObject({
  /** `iss`; the client id when left out. */
  issuer: z.string().min(1, "must not be empty").optional(),
  /** `sub`: the service account or user the token is for; the client id when left out. */
  subject: z.string().min(1, "must not be empty").optional(),
  /** `aud`; the token URL when left out (RFC 7523 §3 point 3). */
  audience: z.string().min(1, "must not be empty").optional(),
  /** Further claims (Google's `scope`, a tenant id). */
  claims: z
    .record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]))
    .default({}),
  lifetimeSeconds: z.number().int().min(1).max(3600).default(300),
});

const rateLimitSchema = z.strictObject({
  requests: z.number().int().positive().max(1_000_000),
  perSeconds: z.number().int().positive().max(86_400),
  /** How long a call over the limit may wait for the next window before it gets 429. */
  maxWaitMs: z.number().int().nonnegative().max(300_000).default(0),
});

export const DPOP_ALGORITHMS = ["ES256", "RS256", "PS256", "EdDSA"] as const;
// Protocol breadth, part A (issue 16): discovery, presets, more client authentication,
// introspection, resource indicators. Kept in one block so that merges stay simple.

export const CLIENT_KEY_ALGS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "HS256",
  "HS384",
  "HS512",
] as const;
export type ClientKeyAlg = (typeof CLIENT_KEY_ALGS)[number];

/** A private key as PEM (PKCS#8, PKCS#1 or SEC1) or as a JWK holding its private part. */
export function isPrivateKeyText(value: string): boolean {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(value)) return true;
  try {
    const jwk: unknown = JSON.parse(value);
    return (
      typeof jwk === "object" &&
      jwk !== null &&
      typeof (jwk as { kty?: unknown }).kty === "string" &&
      typeof (jwk as { d?: unknown }).d === "string"
    );
  } catch {
    return false;
  }
}

/** RFC 8707 §2: an absolute URI without a fragment. */
const resourceUriSchema = z
  .string()
  .refine(
    (v) => URL.canParse(v) && new URL(v).hash === "" && !v.includes("#"),
    "must be an absolute URI without a fragment (RFC 8707)",
  );

const PROTOCOL_A_FIELDS = {
  /** A catalogue entry the integration started from (presets/catalogue.json). */
  preset: idSchema.optional(),
  /** An issuer, or its RFC 8414 / OpenID Connect metadata URL. */
  discoveryUrl: urlTemplateSchema.optional(),
  introspectionUrl: urlTemplateSchema.optional(),
  resource: z.array(resourceUriSchema).optional(),
  /** For `private_key_jwt` (and grants that sign): a PEM or a JWK, a secret. */
  clientPrivateKey: z
    .string()
    .refine(isPrivateKeyText, "must be a PEM private key or a JWK with its private part")
    .optional(),
  clientKeyId: headerTextSchema.min(1, "must not be empty").optional(),
  clientKeyAlg: z.enum(CLIENT_KEY_ALGS).optional(),
  /** A remote MCP server this integration authorizes against (broker/mcp-servers.ts). */
  mcpServerUrl: z
    .string()
    .refine(isMcpServerUrl, "must be an https URL (http only on loopback), without {placeholders}")
    .describe(
      "A remote MCP server: its RFC 9728 metadata names the authorization server; grantType defaults to authorization_code, apiBaseUrl and resource to it, scopes to those it lists; without clientId a client is registered (RFC 7591) or described by the service's client ID metadata document",
    )
    .optional(),
};

/** RFC 9728 §3: a resource identifier is https; a test server or sidecar on this machine may be http. */
function isMcpServerUrl(value: string): boolean {
  if (value.includes("{") || !URL.canParse(value)) return false;
  const url = new URL(value);
  if (url.hash !== "" || value.includes("#")) return false;
  return url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHost(url.hostname));
}

function checkProtocolAFields(
  integration: {
    tokenUrl?: string | undefined;
    discoveryUrl?: string | undefined;
    mcpServerUrl?: string | undefined;
    clientAuth: ClientAuthMethod;
    clientPrivateKey?: string | undefined;
    clientKeyAlg?: ClientKeyAlg | undefined;
    tls: { cert?: string | undefined };
  },
  ctx: z.RefinementCtx,
): void {
  const discovered =
    integration.discoveryUrl !== undefined || integration.mcpServerUrl !== undefined;
  if (integration.tokenUrl === undefined && !discovered) {
    ctx.addIssue({
      code: "custom",
      path: ["tokenUrl"],
      message: "is required (or set discoveryUrl or mcpServerUrl)",
    });
  }
  const alg = integration.clientKeyAlg;
  if (integration.clientAuth === "private_key_jwt") {
    if (integration.clientPrivateKey === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["clientPrivateKey"],
        message: "is required for clientAuth private_key_jwt",
      });
    }
    if (alg?.startsWith("HS")) {
      ctx.addIssue({
        code: "custom",
        path: ["clientKeyAlg"],
        message: "private_key_jwt signs with an asymmetric algorithm (RS, PS, ES or EdDSA)",
      });
    }
  }
  if (
    integration.clientAuth === "client_secret_jwt" &&
    alg !== undefined &&
    !alg.startsWith("HS")
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["clientKeyAlg"],
      message: "client_secret_jwt signs with HS256, HS384 or HS512",
    });
  }
  if (integration.clientAuth === "tls_client_auth" && integration.tls.cert === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["tls", "cert"],
      message: "tls_client_auth needs the tls.cert and tls.key pair",
    });
  }
}

/** The algorithms a client key may sign with (private_key_jwt, jwt_bearer assertions). */
export const CLIENT_KEY_ALGORITHMS = CLIENT_KEY_ALGS;
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

const protocolBFields = {
  deviceAuthorizationUrl: urlTemplateSchema.optional(),
  assertion: assertionSchema.optional(),
  /** Default: an access token (ACCESS_TOKEN_TYPE). */
  subjectTokenType: z.string().min(1).optional(),
  requestedTokenType: z.string().min(1).optional(),
  audience: z.string().min(1, "must not be empty").optional(),
  dpop: z.boolean().optional(),
  // A form's empty group (`{}`, the admin page sends one) means no limit.
  rateLimit: z.preprocess(
    (v) => (v !== null && typeof v === "object" && Object.keys(v).length === 0 ? undefined : v),
    rateLimitSchema.optional(),
  ),
};

const integrationObjectSchema = z.strictObject({
  ...protocolBFields,
  key: idSchema,
  displayName: z.string().min(1).max(200).optional(),
  grantType: z.enum(GRANT_TYPES),
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
  ...PROTOCOL_A_FIELDS,
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

export const integrationSchema = integrationObjectSchema.superRefine((integration, ctx) => {
  checkProtocolAFields(integration, ctx);
  if (
    integration.grantType === "authorization_code" &&
    integration.authorizationUrl === undefined &&
    integration.discoveryUrl === undefined &&
    integration.mcpServerUrl === undefined
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["authorizationUrl"],
      message: "is required for grantType authorization_code (or set discoveryUrl or mcpServerUrl)",
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
export const INTEGRATION_SECRET_FIELDS = ["clientSecret", "clientPrivateKey"] as const;

export type IntegrationInput = z.input<typeof integrationSchema>;
export type Integration = z.output<typeof integrationSchema>;

/** Validates and normalizes an integration; throws `invalid_config` naming each field. */
export function parseIntegration(input: unknown): Integration {
  return parseOrThrow(integrationSchema, withMcpGrantType(input));
}

/** An MCP server is authorized with the authorization code grant unless the integration says otherwise. */
function withMcpGrantType(input: unknown): unknown {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return input;
  const fields = input as Record<string, unknown>;
  if (fields.mcpServerUrl === undefined || fields.grantType !== undefined) return input;
  return { ...fields, grantType: "authorization_code" };
}

/**
 * A refresh hook is a URL (it has a scheme) or a module path (it has none). A URL is
 * `https://`, or `http://` on this machine only (a sidecar); any other scheme
 * (`file:`, `data:`, `node:`) is refused. A module path is a file name, not a template.
 */
export function isUrlHook(hook: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:/.test(hook);
}

function refreshHookProblem(hook: string): string | undefined {
  if (!isUrlHook(hook)) {
    return placeholdersIn(hook).length > 0
      ? "a module path may not hold {placeholders}"
      : undefined;
  }
  const usable = "must be a module path, an https:// URL, or an http:// URL on loopback";
  if (!URL.canParse(hook.replace(/\{[A-Za-z_][A-Za-z0-9_.-]*\}/g, "x"))) return usable;
  if (!isHttpUrlTemplate(hook)) return usable;
  const misplaced = misplacedPlaceholder(hook);
  if (misplaced !== undefined) return misplaced;
  const url = new URL(hook.replace(/\{[A-Za-z_][A-Za-z0-9_.-]*\}/g, "x"));
  if (url.protocol === "https:") return undefined;
  if (url.protocol === "http:" && isLoopbackHost(url.hostname)) return undefined;
  return usable;
}

/** Loopback, as the URL parser normalized it (`127.1` and `0x7f.0.0.1` are 127.0.0.1). */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
