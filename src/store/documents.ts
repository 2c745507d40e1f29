/**
 * Stored documents read back through their schemas, never with a cast: a row written
 * by an older version gets the defaults of the fields added since (an integration
 * from before `allowedApiOrigins` reads with `[]`), and a row that no longer parses
 * fails here, as a `storage_error` naming the row, not later as a crash wherever a
 * missing field is used. The schemas are the ones a write goes through (core/), so a
 * document read back is exactly what was validated.
 *
 * Nothing of the document goes into the error: secrets are merged in before parsing,
 * and JSON.parse's own message quotes the text it failed on.
 */
import { z } from "zod";
import {
  CONNECTION_STATUSES,
  type Connection,
  type ConnectionStatus,
  connectionSchema,
  type ErrorSummary,
} from "../core/connection.js";
import { TokenwardenError } from "../core/errors.js";
import { type Integration, integrationSchema } from "../core/integration.js";
import type { SecretValues } from "../core/secrets.js";
import type { TokenSet } from "../core/token-set.js";
import { invalidConfigFromIssues } from "../core/validation.js";

const tokenSetSchema = z.object({
  accessToken: z.string(),
  tokenType: z.string(),
  refreshToken: z.string().optional(),
  scope: z.string().optional(),
  issuedAt: z.number(),
  expiresAt: z.number().nullable(),
  refreshTokenExpiresAt: z.number().optional(),
  raw: z.record(z.string(), z.unknown()),
  httpStatus: z.number().int().optional(),
});

const errorSummarySchema = z.object({
  code: z.string(),
  message: z.string(),
  oauthError: z.string().optional(),
  oauthErrorDescription: z.string().optional(),
  status: z.number().int().optional(),
  at: z.number(),
});

/** Sealed secrets by path (`clientSecret`, `tls.key`): strings only. */
const secretValuesSchema = z.record(z.string(), z.string());

/**
 * A field of `TokenSet` or `ErrorSummary` missing from its schema here would be
 * dropped on read (z.object strips what it does not know): these fail to compile
 * until both sides name the same fields.
 */
type SameKeys<A, B> = [keyof A] extends [keyof B]
  ? [keyof B] extends [keyof A]
    ? true
    : false
  : false;
const tokenSetFieldsMatch: SameKeys<z.output<typeof tokenSetSchema>, TokenSet> = true;
const errorSummaryFieldsMatch: SameKeys<z.output<typeof errorSummarySchema>, ErrorSummary> = true;
void tokenSetFieldsMatch;
void errorSummaryFieldsMatch;

/** The error for a stored document that does not parse; `row` names it (`token of connection c1`). */
export function unreadable(row: string, reason: string): TokenwardenError {
  return new TokenwardenError(
    "storage_error",
    `the stored ${row} cannot be read (${reason}): the row is damaged or was written by an incompatible version; write it again`,
  );
}

/** JSON.parse without its message, which quotes the (possibly secret) text. */
export function parseJson(text: string, row: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw unreadable(row, "not JSON");
  }
}

function parseWith<S extends z.ZodType>(schema: S, value: unknown, row: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  // The issues name fields (`tokenUrl: is required`), never values.
  throw unreadable(row, invalidConfigFromIssues(result.error.issues).message);
}

/**
 * Fields whose rules were tightened after rows were written, and which are checked
 * again where they are used: a stored string the schema now refuses reads as it was
 * stored. A stored `expiredBodyPattern` that RE2 refuses is never run and counts as
 * no match (broker/api-call.ts; README "Events"): refusing the whole integration here
 * would take its connections down with it.
 */
const CHECKED_AGAIN_AT_USE = ["expiredBodyPattern"] as const;

/** An integration from its document with its opened secrets merged in. */
export function integrationDocument(value: unknown, key: string): Integration {
  const row = `integration ${key}`;
  const result = integrationSchema.safeParse(value);
  if (result.success) return result.data;
  const tolerated = result.error.issues.every((issue) =>
    CHECKED_AGAIN_AT_USE.some((field) => issue.path.length === 1 && issue.path[0] === field),
  );
  if (!tolerated || typeof value !== "object" || value === null) {
    throw unreadable(row, invalidConfigFromIssues(result.error.issues).message);
  }
  const stored: Record<string, unknown> = { ...value };
  const kept: Partial<Record<(typeof CHECKED_AGAIN_AT_USE)[number], string>> = {};
  for (const field of CHECKED_AGAIN_AT_USE) {
    const text = stored[field];
    if (typeof text !== "string") continue;
    kept[field] = text;
    delete stored[field];
  }
  return { ...parseWith(integrationSchema, stored, row), ...kept };
}

/** A connection from its document with its opened secrets merged in. */
export function connectionDocument(value: unknown, id: string): Connection {
  return parseWith(connectionSchema, value, `connection ${id}`);
}

export function secretValues(text: string, row: string): SecretValues {
  return parseWith(secretValuesSchema, parseJson(text, row), row);
}

export function tokenSetDocument(text: string, connectionId: string): TokenSet {
  const row = `token of connection ${connectionId}`;
  return parseWith(tokenSetSchema, parseJson(text, row), row);
}

export function errorSummaryDocument(text: string, connectionId: string): ErrorSummary {
  const row = `last error of connection ${connectionId}`;
  return parseWith(errorSummarySchema, parseJson(text, row), row);
}

const STATUSES: ReadonlySet<string> = new Set(CONNECTION_STATUSES);

/** A connection's status column: one of the statuses this version knows. */
export function connectionStatus(value: string, connectionId: string): ConnectionStatus {
  if (STATUSES.has(value)) return value as ConnectionStatus;
  throw unreadable(`status of connection ${connectionId}`, "not a known status");
}
