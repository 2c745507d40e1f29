/**
 * The grants an integration may use and the fields that only some of them read: the
 * device grant's URL (RFC 8628), a JWT bearer assertion's claims (RFC 7523), token
 * exchange's token types and audience (RFC 8693), DPoP (RFC 9449), resource indicators
 * (RFC 8707), and the per-connection rate limit of API calls.
 */
import { z } from "zod";
import { urlTemplateSchema } from "./integration-fields.js";

export const GRANT_TYPES = [
  "authorization_code",
  "client_credentials",
  "password",
  "refresh_token",
  // RFC 8628, RFC 7523 §2.1, RFC 8693.
  "device_code",
  "jwt_bearer",
  "token_exchange",
] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

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

/** RFC 8707 §2: an absolute URI without a fragment. */
export const resourceUriSchema = z
  .string()
  .refine(
    (v) => URL.canParse(v) && new URL(v).hash === "" && !v.includes("#"),
    "must be an absolute URI without a fragment (RFC 8707)",
  );

export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

export const grantFields = {
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
