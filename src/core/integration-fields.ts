/**
 * The field schemas an integration is built from, shared by its parts: ids, URL
 * templates, header text and names, origins, scopes, where the token goes, and where
 * a non-standard server puts the standard response fields.
 */
import { z } from "zod";
import { placeholdersIn, TOKEN_PLACEHOLDER } from "./template.js";
import { CONTROL_CHARACTERS, misplacedPlaceholder, splitUrlTemplate } from "./url-template.js";

/** Integration keys and connection ids. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
export const PARAMETER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

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
export const headerTextSchema = z
  .string()
  .refine((v) => !CONTROL_CHARACTERS.test(v), "must not hold control characters");
/** RFC 9110 §5.1 field name. */
export const headerNameSchema = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "must be a header name (RFC 9110 token)");
export const headerRecord = z.record(headerNameSchema, headerTextSchema);

/** An origin (`https://api.example.com`, `http://127.0.0.1:8080`), kept in its normal form. */
export const originSchema = z
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

export const stringRecord = z.record(z.string(), z.string());

/** Scopes as a list, or as one string split on commas and whitespace (forgiving input). */
export const scopesSchema = z
  .preprocess(
    (v) => (typeof v === "string" ? v.split(/[\s,]+/).filter((s) => s !== "") : v),
    z.array(z.string().min(1, "must not be empty")),
  )
  .default([]);

export const tokenPlacementSchema = z
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

const responsePathSchema = z
  .string()
  .regex(/^[^.\s]+(\.[^.\s]+)*$/, "must be a dotted path such as data.access_token");

/**
 * Where a non-standard server puts the standard fields. `expiresAt` names an absolute
 * expiry (epoch seconds, epoch milliseconds or an ISO 8601 date) instead of a lifetime.
 */
export const responseMapSchema = z.strictObject({
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
