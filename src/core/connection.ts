import { z } from "zod";
import { invalidConfig } from "./errors.js";
import { type Integration, idSchema } from "./integration.js";
import { CONTROL_CHARACTERS } from "./url-template.js";
import { parseOrThrow } from "./validation.js";

export const CONNECTION_STATUSES = [
  "pending_authorization",
  "active",
  "needs_reauth",
  "error",
  "revoked",
] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];

export const connectionSchema = z.strictObject({
  id: idSchema,
  integration: idSchema,
  environment: z.string().max(64).default(""),
  // Values land in URLs and headers: a control character (CR, LF) is never data there.
  parameters: z
    .record(
      z.string(),
      z.string().refine((v) => !CONTROL_CHARACTERS.test(v), "must not hold control characters"),
    )
    .default({}),
  clientId: z.string().min(1, "must not be empty").optional(),
  clientSecret: z.string().min(1, "must not be empty").optional(),
  username: z.string().min(1, "must not be empty").optional(),
  password: z.string().min(1, "must not be empty").optional(),
  refreshToken: z.string().min(1, "must not be empty").optional(),
  // Protocol breadth (b): RFC 8693's subject, another connection's token or a given one.
  subjectConnectionId: idSchema.optional(),
  subjectToken: z.string().min(1, "must not be empty").optional(),
});

export type ConnectionInput = z.input<typeof connectionSchema>;
/** What a user configures; the broker keeps the state (status, expiry, errors) beside it. */
export type Connection = z.output<typeof connectionSchema>;

/** Fields of a connection that are secrets: stored sealed, never returned. */
export const CONNECTION_SECRET_FIELDS = [
  "clientSecret",
  "password",
  "refreshToken",
  "subjectToken",
] as const;

export function parseConnection(input: unknown): Connection {
  return parseOrThrow(connectionSchema, input);
}

/**
 * The checks that need both sides: every parameter the integration declares has a
 * value, no value is given for a name it does not declare, and the grant has what it
 * needs.
 */
export function checkConnectionAgainst(integration: Integration, connection: Connection): void {
  if (connection.integration !== integration.key) {
    throw invalidConfig("integration", `is ${connection.integration}, not ${integration.key}`);
  }
  for (const name of integration.parameters) {
    if (connection.parameters[name] === undefined) {
      throw invalidConfig(`parameters.${name}`, `is required by integration ${integration.key}`);
    }
  }
  for (const name of Object.keys(connection.parameters)) {
    if (!integration.parameters.includes(name)) {
      throw invalidConfig(
        `parameters.${name}`,
        `is not a parameter of integration ${integration.key}`,
      );
    }
  }
  const clientId = connection.clientId ?? integration.clientId;
  // An MCP server's client may be registered when the connection is authorized.
  if (clientId === undefined && integration.mcpServerUrl === undefined) {
    throw invalidConfig("clientId", "is required (on the connection or its integration)");
  }
  if (integration.grantType === "password") {
    if (connection.username === undefined)
      throw invalidConfig("username", "is required for the password grant");
    if (connection.password === undefined)
      throw invalidConfig("password", "is required for the password grant");
  }
  if (integration.grantType === "refresh_token" && connection.refreshToken === undefined) {
    throw invalidConfig("refreshToken", "is required for grantType refresh_token");
  }
  if (integration.grantType === "token_exchange") {
    if ((connection.subjectConnectionId === undefined) === (connection.subjectToken === undefined))
      throw invalidConfig(
        "subjectConnectionId",
        "token_exchange needs exactly one of subjectConnectionId and subjectToken",
      );
    if (connection.subjectConnectionId === connection.id)
      throw invalidConfig("subjectConnectionId", "must name another connection");
  }
}

/** A secret-free summary of the last failure, as stored and shown. */
export interface ErrorSummary {
  code: string;
  message: string;
  oauthError?: string;
  oauthErrorDescription?: string;
  status?: number;
  at: number;
}

/** What the broker knows about a connection; read-only to users. */
export interface ConnectionState {
  status: ConnectionStatus;
  expiresAt: number | null;
  nextRefreshAt: number | null;
  lastRefreshAt: number | null;
  failureCount: number;
  lastError: ErrorSummary | null;
  scope: string | null;
  tokenVersion: number;
  /** When the refresh token ends, if the server said (`refresh_token_expires_in`). */
  refreshTokenExpiresAt?: number | null;
}
