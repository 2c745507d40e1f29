/**
 * What a person sees at the redirect URL once the authorization server sends them
 * back, decided once for both places that receive it: the service's `/oauth/callback`
 * and the CLI's loopback server (`tokenwarden authorize`). Four outcomes: success,
 * denied by the person (`access_denied`, nothing changed), an expired or replayed
 * link (start again), and a failure (the token endpoint or the network; its message
 * is the error's, which never holds a secret).
 */
import type { TokenwardenError } from "../core/errors.js";
import { type CallbackPageInput, callbackPage } from "./pages.js";

export type CallbackKind = "success" | "denied" | "expired" | "failed";

export interface CallbackOutcome extends CallbackPageInput {
  kind: CallbackKind;
  /** The HTTP status of the page. */
  status: number;
}

/** Errors that mean this link cannot complete: unknown, expired, used, or malformed. */
const STALE_LINK_CODES = new Set(["not_found", "invalid_config", "conflict"]);

/**
 * The outcome of `completeAuthorization`: its connection, or what it threw. `closing`
 * ends the success line: where the person goes next ("You can close this window.").
 */
export function callbackOutcome(
  result: { connection: { id: string; status: string } } | { error: TokenwardenError },
  closing = "You can close this window.",
): CallbackOutcome {
  if ("connection" in result) {
    const { id, status } = result.connection;
    return {
      kind: "success",
      status: 200,
      ok: true,
      connectionId: id,
      connectionStatus: status,
      title: "OAuth2 token received with success!",
      detail: `Connection ${id} is ${status}. ${closing}`,
    };
  }
  const { error } = result;
  const code = error.oauthError ?? error.code;
  if (STALE_LINK_CODES.has(error.code)) {
    return {
      kind: "expired",
      status: 400,
      ok: false,
      error: code,
      title: "This authorization link has expired or was already used",
      detail: "Start the authorization again from Tokenwarden.",
    };
  }
  if (error.oauthError === "access_denied") {
    const description =
      error.oauthErrorDescription === undefined ? "" : `: ${error.oauthErrorDescription}`;
    return {
      kind: "denied",
      status: 403,
      ok: false,
      error: code,
      title: "Access was denied",
      detail: `The authorization server answered access_denied${description}. Nothing was changed.`,
    };
  }
  return {
    kind: "failed",
    status: 502,
    ok: false,
    error: code,
    title: "The authorization did not complete",
    detail: error.message,
  };
}

/** The page for an outcome, with the headers it must go out with. */
export function renderCallback(
  outcome: CallbackOutcome,
  openerOrigin: string,
): { status: number; html: string; headers: Record<string, string> } {
  const page = callbackPage(outcome, openerOrigin);
  return {
    status: outcome.status,
    html: page.html,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": page.csp,
      "cache-control": "no-store",
      "referrer-policy": "no-referrer",
    },
  };
}
