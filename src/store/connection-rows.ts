/**
 * A connection's row, both ways: the configuration document with its secrets sealed
 * apart, the state columns a patch writes, and the row read back (documents parsed
 * with their schemas, documents.ts). Shared by the configuration and token-state
 * roles, which write the same row.
 */
import type { Selectable } from "kysely";
import { CONNECTION_SECRET_FIELDS, type Connection } from "../core/connection.js";
import type { StatePatch } from "../core/state.js";
import type { TokenSet } from "../core/token-set.js";
import type { Sealer } from "./crypto.js";
import {
  connectionDocument,
  connectionStatus,
  errorSummaryDocument,
  parseJson,
  secretValues,
  tokenSetDocument,
} from "./documents.js";
import type { ConnectionsTable } from "./schema.js";
import { sealingContext } from "./sealed-rows.js";
import type { ConnectionSummary, StoredConnection } from "./store.js";

type ConnectionRow = Selectable<ConnectionsTable>;

/** The configuration columns: the document without secrets, and the secrets sealed. */
export function connectionColumns(
  connection: Connection,
  sealer: Sealer,
): Pick<ConnectionsTable, "integration" | "environment" | "document" | "sealed_secrets"> & {
  sealedAny: boolean;
} {
  const document: Record<string, unknown> = { ...connection };
  const secrets: Record<string, unknown> = {};
  for (const field of CONNECTION_SECRET_FIELDS) {
    secrets[field] = connection[field];
    delete document[field];
  }
  const sealedAny = Object.values(secrets).some((v) => v !== undefined);
  return {
    integration: connection.integration,
    environment: connection.environment,
    document: JSON.stringify(document),
    sealed_secrets: sealedAny
      ? sealer.seal(JSON.stringify(secrets), sealingContext.connectionSecrets(connection.id))
      : null,
    sealedAny,
  };
}

/** Maps a state patch to columns; only the fields present are written. */
export function stateColumns(
  id: string,
  patch: StatePatch,
  sealer: Sealer,
): Partial<ConnectionsTable> {
  const columns: Partial<ConnectionsTable> = {};
  if (patch.status !== undefined) columns.status = patch.status;
  if (patch.expiresAt !== undefined) columns.expires_at = patch.expiresAt;
  if (patch.nextRefreshAt !== undefined) columns.next_refresh_at = patch.nextRefreshAt;
  if (patch.lastRefreshAt !== undefined) columns.last_refresh_at = patch.lastRefreshAt;
  if (patch.failureCount !== undefined) columns.failure_count = patch.failureCount;
  if (patch.lastError !== undefined) {
    columns.last_error = patch.lastError === null ? null : JSON.stringify(patch.lastError);
  }
  if (patch.scope !== undefined) columns.scope = patch.scope;
  if (patch.refreshTokenExpiresAt !== undefined)
    columns.refresh_token_expires_at = patch.refreshTokenExpiresAt;
  if (patch.refreshTokenWarnAt !== undefined)
    columns.refresh_token_warn_at = patch.refreshTokenWarnAt;
  if (patch.token !== undefined) {
    columns.sealed_token =
      patch.token === null
        ? null
        : sealer.seal(JSON.stringify(patch.token), sealingContext.connectionToken(id));
  }
  return columns;
}

/** The connection and its state, secrets opened; the token is left sealed (`tokenFromRow`). */
export function summaryFromRow(row: ConnectionRow, sealer: Sealer): ConnectionSummary {
  const name = `connection ${row.id}`;
  const document = parseJson(row.document, name);
  const secrets =
    row.sealed_secrets === null
      ? {}
      : secretValues(
          sealer.open(row.sealed_secrets, sealingContext.connectionSecrets(row.id)),
          `secrets of ${name}`,
        );
  // Parsed with the secrets in: the schema checks them too, and refuses anything else.
  const connection = connectionDocument(
    typeof document === "object" && document !== null ? { ...document, ...secrets } : document,
    row.id,
  );
  return {
    connection,
    state: {
      status: connectionStatus(row.status, row.id),
      expiresAt: numberOrNull(row.expires_at),
      nextRefreshAt: numberOrNull(row.next_refresh_at),
      lastRefreshAt: numberOrNull(row.last_refresh_at),
      failureCount: Number(row.failure_count),
      lastError: row.last_error === null ? null : errorSummaryDocument(row.last_error, row.id),
      scope: row.scope,
      tokenVersion: Number(row.token_version),
      refreshTokenExpiresAt: numberOrNull(row.refresh_token_expires_at ?? null),
    },
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/**
 * The whole connection: its summary and its token, opened. Named fields rather than
 * `{ ...summary, token }` (a spread followed by a field is slow in V8): every token
 * load and every scheduled renewal's check-out reads rows through here.
 */
export function storedFromRow(row: ConnectionRow, sealer: Sealer): StoredConnection {
  const summary = summaryFromRow(row, sealer);
  return {
    connection: summary.connection,
    state: summary.state,
    token: tokenFromRow(row, sealer),
    createdAt: summary.createdAt,
    updatedAt: summary.updatedAt,
  };
}

/** The token set, opened and parsed: read on a cache miss only, never on a cache hit. */
export function tokenFromRow(row: ConnectionRow, sealer: Sealer): TokenSet | undefined {
  if (row.sealed_token === null) return undefined;
  return tokenSetDocument(
    sealer.open(row.sealed_token, sealingContext.connectionToken(row.id)),
    row.id,
  );
}

function numberOrNull(value: number | null): number | null {
  return value === null ? null : Number(value);
}
