/**
 * The page a person sees at the redirect URL (its wording: callback-outcome.ts): a
 * success, a denial, a stale or replayed link, a failure. Each
 * tells the window that opened it (the admin page) by postMessage, to that window's
 * origin only, then closes itself if it is a popup.
 */
import { randomBytes } from "node:crypto";

export interface CallbackPageInput {
  ok: boolean;
  connectionId?: string;
  /** The connection's status after a success. */
  connectionStatus?: string;
  /** The error code, e.g. `access_denied` or `not_found`. */
  error?: string;
  title: string;
  detail: string;
}

export function callbackPage(
  outcome: CallbackPageInput,
  openerOrigin: string,
): { html: string; csp: string } {
  const nonce = randomBytes(16).toString("base64");
  const message = {
    source: "tokenwarden",
    type: outcome.ok ? "authorized" : "authorization_failed",
    connectionId: outcome.connectionId ?? null,
    status: outcome.connectionStatus ?? null,
    error: outcome.error ?? null,
    title: outcome.title,
  };
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(outcome.title)} - Tokenwarden</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; display: grid; place-items: center; min-height: 100vh; background: #f6f7f9; color: #1b1f24; }
  main { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 2rem; max-width: 32rem; }
  h1 { font-size: 1.25rem; margin: 0 0 .5rem; color: ${outcome.ok ? "#116329" : "#a40e26"}; }
  p { margin: .25rem 0; }
</style>
</head>
<body>
<main role="${outcome.ok ? "status" : "alert"}">
  <h1>${escapeHtml(outcome.title)}</h1>
  <p>${escapeHtml(outcome.detail)}</p>
  <p id="closing" hidden>This window closes by itself.</p>
</main>
<script nonce="${nonce}">
  (function () {
    var message = ${JSON.stringify(message).replace(/</g, "\\u003c")};
    if (window.opener && !window.opener.closed) {
      window.opener.postMessage(message, ${JSON.stringify(openerOrigin)});
      document.getElementById("closing").hidden = false;
      setTimeout(function () { window.close(); }, ${outcome.ok ? 1500 : 6000});
    }
  })();
</script>
</body>
</html>
`;
  const csp = `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
  return { html, csp };
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
