/**
 * The answer of `GET /v1/schemas`: what the admin page must know about the model,
 * taken from the model itself (src/core) so that the page holds no copy of it. Kept
 * apart from the routes so the page's type check can import its type without Fastify.
 */
import {
  CONNECTION_SECRET_FIELDS,
  CONNECTION_STATUSES,
  type ConnectionStatus,
  connectionSchema,
} from "../core/connection.js";
import { type ConnectionActions, connectionActions, GRANT_FIELDS } from "../core/grants.js";
import {
  GRANT_TYPES,
  type GrantType,
  INTEGRATION_SECRET_FIELDS,
  integrationSchema,
} from "../core/integration.js";
import { jsonSchemaOf } from "./route.js";

/** What the page needs to know about the model, from the model itself. */
export function adminSchemas(redirectUri: string) {
  return {
    integration: jsonSchemaOf(integrationSchema),
    connection: jsonSchemaOf(connectionSchema),
    redirectUri,
    secretFields: {
      integration: [...INTEGRATION_SECRET_FIELDS],
      connection: [...CONNECTION_SECRET_FIELDS],
    },
    /** Fields only some grants use; a form shows them for those grants only. */
    grantFields: GRANT_FIELDS,
    statuses: [...CONNECTION_STATUSES],
    /** status → grant → which buttons apply. */
    actions: Object.fromEntries(
      CONNECTION_STATUSES.map((status) => [
        status,
        Object.fromEntries(GRANT_TYPES.map((grant) => [grant, connectionActions(status, grant)])),
      ]),
    ) as Record<ConnectionStatus, Record<GrantType, ConnectionActions>>,
  };
}
