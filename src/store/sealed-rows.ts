/**
 * Where each sealed value lives, as the associated data it is sealed with (crypto.ts):
 * a value copied into another row or column does not open. Shared by the store and
 * by key rotation, so both name a value the same way.
 */
import type { Integration } from "../core/integration.js";
import {
  INTEGRATION_SECRET_PATHS,
  type SecretValues,
  secretsOf,
  withoutSecrets,
  withSecrets,
} from "../core/secrets.js";
import type { Sealer } from "./crypto.js";
import { integrationDocument, parseJson, secretValues } from "./documents.js";
import type { IntegrationsTable } from "./schema.js";

export const sealingContext = {
  integrationSecrets: (key: string) => `integration:${key}:secrets`,
  /** The client secret alone, as written before migration 0004. */
  legacyClientSecret: (key: string) => `integration:${key}:clientSecret`,
  connectionSecrets: (id: string) => `connection:${id}:secrets`,
  connectionToken: (id: string) => `connection:${id}:token`,
  codeVerifier: (connectionId: string) => `authorization:${connectionId}:codeVerifier`,
  deviceCode: (connectionId: string) => `device:${connectionId}:deviceCode`,
  mcpClientSecret: (integration: string) => `mcp-client:${integration}:secret`,
};

export type IntegrationRow = Pick<
  IntegrationsTable,
  "key" | "document" | "sealed_client_secret" | "sealed_secrets"
>;

/** The columns that hold an integration: its document without secrets, and its secrets sealed. */
export function integrationColumns(
  integration: Integration,
  sealer: Sealer,
): Omit<IntegrationRow, "key"> & { sealedAny: boolean } {
  const secrets = secretsOf(integration, INTEGRATION_SECRET_PATHS);
  const sealedAny = Object.keys(secrets).length > 0;
  return {
    document: JSON.stringify(withoutSecrets(integration, INTEGRATION_SECRET_PATHS)),
    sealed_secrets: sealedAny
      ? sealer.seal(JSON.stringify(secrets), sealingContext.integrationSecrets(integration.key))
      : null,
    sealed_client_secret: null,
    sealedAny,
  };
}

/**
 * An integration from its row, secrets opened, parsed with its schema (documents.ts).
 * Rows written before migration 0004 carry the client secret in `sealed_client_secret`
 * and `tls.key` in the clear in the document; they read the same (and `needsSealing`
 * says they should be rewritten).
 */
export function integrationFromColumns(row: IntegrationRow, sealer: Sealer): Integration {
  const name = `integration ${row.key}`;
  const document = parseJson(row.document, name);
  const secrets: SecretValues =
    row.sealed_secrets === null
      ? {}
      : secretValues(
          sealer.open(row.sealed_secrets, sealingContext.integrationSecrets(row.key)),
          `secrets of ${name}`,
        );
  if (row.sealed_client_secret !== null && secrets.clientSecret === undefined) {
    secrets.clientSecret = sealer.open(
      row.sealed_client_secret,
      sealingContext.legacyClientSecret(row.key),
    );
  }
  // Parsed with the secrets in: the schema checks them too (a TLS key needs its cert).
  return integrationDocument(withSecrets(document, secrets), row.key);
}

/** Whether a row still holds a secret the old way (a sealed client secret alone, or a key in the clear). */
export function needsSealing(row: IntegrationRow): boolean {
  if (row.sealed_client_secret !== null) return true;
  const document = parseJson(row.document, `integration ${row.key}`);
  return Object.keys(secretsOf(document, INTEGRATION_SECRET_PATHS)).length > 0;
}
