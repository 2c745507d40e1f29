/**
 * What the broker does on its own (scheduled and background renewals, hook runs,
 * status changes) goes to the service log, each line naming the connection and its
 * integration: a failure at warn, a recovery at info. Nothing here is on a request,
 * so these lines carry no request id. Events and status changes hold codes, statuses
 * and the server's error text, never a secret (core/events.ts).
 */
import type { FastifyBaseLogger } from "fastify";
import type { StatusChange } from "../broker/status.js";
import type { Tokenwarden, TokenwardenWarning } from "../broker/tokenwarden.js";
import type { ConnectionStatus } from "../core/connection.js";
import type { TokenEvent } from "../core/events.js";

/** Statuses a connection is in when something went wrong. */
const TROUBLED: ReadonlySet<ConnectionStatus> = new Set(["error", "needs_reauth"]);

/** Subscribes the log to the broker; returns the unsubscribe. */
export function logBrokerSignals(tw: Tokenwarden, log: FastifyBaseLogger): () => void {
  const onEvent = (event: TokenEvent) => {
    const fields = {
      connectionId: event.connectionId,
      integration: event.integration,
      trigger: event.trigger,
      action: event.action,
      outcome: event.outcome,
      httpStatus: event.httpStatus,
      errorCode: event.errorCode,
      durationMs: event.durationMs,
    };
    if (event.outcome === "failure") {
      log.warn(
        fields,
        `${event.action} failed for connection ${event.connectionId}: ${event.errorDescription ?? event.errorCode}`,
      );
    } else {
      log.debug(fields, `${event.action} succeeded for connection ${event.connectionId}`);
    }
  };
  const onStatus = (change: StatusChange) => {
    const fields = {
      connectionId: change.connectionId,
      integration: change.integration,
      environment: change.environment,
      status: change.status,
      previousStatus: change.previousStatus,
      ...(change.error === undefined ? {} : { errorCode: change.error.code }),
    };
    const message = `connection ${change.connectionId}: ${change.previousStatus} -> ${change.status}${change.error === undefined ? "" : ` (${change.error.message})`}`;
    if (TROUBLED.has(change.status)) log.warn(fields, message);
    else log.info(fields, message);
  };
  const onWarning = (warning: TokenwardenWarning) => {
    const { message, ...fields } = warning;
    log.warn(fields, message);
  };
  tw.on("event", onEvent);
  tw.on("status", onStatus);
  tw.on("warning", onWarning);
  return () => {
    tw.off("event", onEvent);
    tw.off("status", onStatus);
    tw.off("warning", onWarning);
  };
}
