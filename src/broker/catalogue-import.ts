/**
 * A declarative file's integrations and connections (config/declarative.ts parses it)
 * written to the catalogue: every entry is validated first, naming it
 * (`integrations[2].tokenUrl`), then all are upserted in order in one transaction, so
 * a file refused as a whole (an entry invalid against its integration, a secret sent
 * to a new destination without being sent again, a database error midway) changes
 * nothing.
 */
import { CONNECTION_SECRET_FIELDS, parseConnection } from "../core/connection.js";
import { TokenwardenError } from "../core/errors.js";
import { parseIntegration } from "../core/integration.js";
import type { CatalogueWriter, PutIntegrationOptions } from "./catalogue.js";

/** What a declarative file holds, parsed but not yet validated. */
export interface CatalogueDocument {
  integrations: readonly unknown[];
  connections: readonly unknown[];
}

export interface CatalogueImportReport {
  integrations: number;
  connections: number;
}

/** Checks every entry on its own, before the transaction starts. */
export function validateCatalogueDocument(document: CatalogueDocument): void {
  for (const [i, item] of document.integrations.entries()) {
    located(`integrations[${i}]`, () => parseIntegration(item));
  }
  for (const [i, item] of document.connections.entries()) {
    located(`connections[${i}]`, () => parseConnection(item));
  }
}

/** The writes, run inside the broker's catalogue transaction. */
export async function importCatalogue(
  catalogue: CatalogueWriter,
  document: CatalogueDocument,
  options: Pick<PutIntegrationOptions, "moduleHooks"> = {},
): Promise<CatalogueImportReport> {
  // An integration moving to a new destination may keep its connections' secrets when
  // this file sends them again: they are written later in the same transaction.
  const resentConnectionSecrets = new Map<string, Set<string>>();
  for (const item of document.connections as ReadonlyArray<Record<string, unknown>>) {
    const fields = CONNECTION_SECRET_FIELDS.filter((f) => typeof item[f] === "string");
    if (typeof item.id === "string") resentConnectionSecrets.set(item.id, new Set(fields));
  }
  for (const [i, item] of document.integrations.entries()) {
    await located(`integrations[${i}]`, () =>
      catalogue.putIntegration(item, { ...options, resentConnectionSecrets }),
    );
  }
  for (const [i, item] of document.connections.entries()) {
    await located(`connections[${i}]`, () => catalogue.putConnection(item));
  }
  return { integrations: document.integrations.length, connections: document.connections.length };
}

function located<T>(where: string, fn: () => T): T {
  try {
    const result = fn();
    if (result instanceof Promise) {
      return result.catch((error: unknown) => {
        throw relocate(where, error);
      }) as T;
    }
    return result;
  } catch (error) {
    throw relocate(where, error);
  }
}

/** An `invalid_config` error from one entry, with the entry's place in front of its field. */
function relocate(where: string, error: unknown): unknown {
  if (!(error instanceof TokenwardenError) || error.code !== "invalid_config") return error;
  const field = error.field === undefined ? where : `${where}.${error.field}`;
  const message =
    error.field !== undefined && error.message.startsWith(`${error.field}:`)
      ? `${where}.${error.message}`
      : `${where}: ${error.message}`;
  return new TokenwardenError("invalid_config", message, {
    field,
    ...(error.issues === undefined
      ? {}
      : { issues: error.issues.map((issue) => ({ ...issue, field: `${where}.${issue.field}` })) }),
  });
}
