/**
 * Integrations already parsed, by the exact columns they were parsed from. Parsing an
 * integration with its schema costs about a hundred microseconds (an RE2 compile of
 * `expiredBodyPattern`, URL templates checked), ten times the read itself, and every
 * token load reads one; the same columns always parse to the same value, so a row
 * that has not changed is parsed once per store. Each read still gets its own copy,
 * as a fresh parse would give.
 */
import type { Integration } from "../core/integration.js";
import type { Sealer } from "./crypto.js";
import { type IntegrationRow, integrationFromColumns } from "./sealed-rows.js";

/** More integrations than this and the memo starts over (deleted keys linger otherwise). */
const MAX_ENTRIES = 1000;

interface Entry {
  row: IntegrationRow;
  integration: Integration;
}

export class IntegrationMemo {
  readonly #entries = new Map<string, Entry>();
  readonly #sealer: Sealer;

  constructor(sealer: Sealer) {
    this.#sealer = sealer;
  }

  /** The integration in `row`, secrets opened and parsed (sealed-rows.ts). */
  read(row: IntegrationRow): Integration {
    const hit = this.#entries.get(row.key);
    if (hit !== undefined && sameColumns(hit.row, row)) return structuredClone(hit.integration);
    const integration = integrationFromColumns(row, this.#sealer);
    if (this.#entries.size >= MAX_ENTRIES) this.#entries.clear();
    this.#entries.set(row.key, {
      row: {
        key: row.key,
        document: row.document,
        sealed_secrets: row.sealed_secrets,
        sealed_client_secret: row.sealed_client_secret,
      },
      integration: structuredClone(integration),
    });
    return integration;
  }
}

function sameColumns(a: IntegrationRow, b: IntegrationRow): boolean {
  return (
    a.document === b.document &&
    a.sealed_secrets === b.sealed_secrets &&
    a.sealed_client_secret === b.sealed_client_secret
  );
}
