/**
 * One delivery attempt per the Standard Webhooks specification: `webhook-id` (the
 * same on every attempt), `webhook-timestamp` (this attempt's, in seconds) and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, signed by the
 * `standardwebhooks` package (the specification's reference library). Redirects are
 * never followed: a 3xx is a failed attempt, so a delivery cannot be sent on to
 * another origin.
 */
import { Webhook } from "standardwebhooks";
import { Agent, request } from "undici";

export interface AttemptResult {
  ok: boolean;
  httpStatus: number | null;
  /** Why it failed, without the response body (it could echo anything). */
  error: string | null;
}

/** Response bodies are read and dropped, up to this much; a longer one ends the connection. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export function signatureHeaders(
  secret: string,
  messageId: string,
  now: number,
  payload: string,
): Record<string, string> {
  return {
    "webhook-id": messageId,
    "webhook-timestamp": String(Math.floor(now / 1000)),
    "webhook-signature": new Webhook(secret).sign(messageId, new Date(now), payload),
  };
}

export async function attemptDelivery(
  dispatcher: Agent,
  target: { url: string; secret: string; messageId: string; payload: string },
  now: number,
  timeoutMs: number,
): Promise<AttemptResult> {
  try {
    const res = await request(target.url, {
      method: "POST",
      dispatcher,
      headers: {
        "content-type": "application/json",
        "user-agent": "Tokenwarden-Webhooks/1",
        ...signatureHeaders(target.secret, target.messageId, now, target.payload),
      },
      body: target.payload,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body.dump({ limit: MAX_RESPONSE_BYTES }).catch(() => undefined);
    if (res.statusCode >= 200 && res.statusCode < 300)
      return { ok: true, httpStatus: res.statusCode, error: null };
    const error =
      res.statusCode >= 300 && res.statusCode < 400
        ? `the receiver answered ${res.statusCode} (a redirect, not followed)`
        : `the receiver answered ${res.statusCode}`;
    return { ok: false, httpStatus: res.statusCode, error };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const name = (error as { name?: unknown }).name;
    const why =
      name === "TimeoutError" ||
      code === "UND_ERR_HEADERS_TIMEOUT" ||
      code === "UND_ERR_BODY_TIMEOUT"
        ? `no answer within ${timeoutMs} ms`
        : typeof code === "string"
          ? `the request failed (${code})`
          : "the request failed";
    return { ok: false, httpStatus: null, error: why };
  }
}

export function deliveryAgent(timeoutMs: number): Agent {
  return new Agent({ connect: { timeout: timeoutMs }, keepAliveTimeout: 4_000 });
}
