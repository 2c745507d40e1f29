/**
 * `x-request-id`: the caller's id when it is a sane token (a proxy or a client that
 * traces its own calls), a new one otherwise. It names every log line of the request
 * (pino's `reqId`) and comes back on the response, so a user quoting it finds the
 * lines. A hostile value (a CR/LF, a megabyte, a JSON fragment) is never echoed nor
 * logged: it is replaced.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";

export const REQUEST_ID_HEADER = "x-request-id";

/** Letters, digits and `-._:`, up to 128: UUIDs, ULIDs, W3C trace ids, `svc:1234`. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Fastify's `genReqId`: the caller's id if sane, else a random UUID. */
export function requestId(request: Pick<IncomingMessage, "headers">): string {
  const given = request.headers[REQUEST_ID_HEADER];
  // A repeated header arrives as one value joined by ", ": not sane, so replaced.
  return typeof given === "string" && SANE_REQUEST_ID.test(given) ? given : randomUUID();
}
