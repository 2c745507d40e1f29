/**
 * A connection's status changed (active → error → needs_reauth → active ...), told
 * to listeners only after the write that changed it succeeded: the service logs it,
 * and nothing that hears it can see a status the database does not hold.
 */
import type { Connection, ConnectionStatus, ErrorSummary } from "../core/connection.js";
import type { StatePatch } from "../core/state.js";

export interface StatusChange {
  connectionId: string;
  integration: string;
  environment: string;
  status: ConnectionStatus;
  previousStatus: ConnectionStatus;
  /** The failure that caused it (codes and the server's text: never a secret). */
  error?: ErrorSummary;
}

/** The change a written patch made, or `undefined` when it left the status as it was. */
export function statusChange(
  connection: Pick<Connection, "id" | "integration" | "environment">,
  previousStatus: ConnectionStatus,
  patch: StatePatch,
): StatusChange | undefined {
  if (patch.status === undefined || patch.status === previousStatus) return undefined;
  return {
    connectionId: connection.id,
    integration: connection.integration,
    environment: connection.environment,
    status: patch.status,
    previousStatus,
    ...(patch.lastError == null ? {} : { error: patch.lastError }),
  };
}
