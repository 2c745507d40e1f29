import { randomBytes } from "node:crypto";
import { escapeHtml } from "./pages.js";

/**
 * `GET /`: for now a short status page pointing at the API; the admin page (forms,
 * Authorize popup, live status) replaces it.
 */
export function adminPage(publicUrl: string): { html: string; csp: string } {
  const nonce = randomBytes(16).toString("base64");
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tokenwarden</title>
<style nonce="${nonce}">
  body { font: 16px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 44rem; padding: 0 1rem; color: #1b1f24; }
  code { background: #f0f2f4; padding: .1rem .3rem; border-radius: 4px; }
</style>
</head>
<body>
<main>
  <h1>Tokenwarden is running</h1>
  <p>The REST API is under <code>${escapeHtml(publicUrl)}/v1</code>, described in
     <a href="/openapi.json">/openapi.json</a>. Send the API key printed at first start as
     <code>Authorization: Bearer &lt;key&gt;</code>.</p>
  <p>The redirect URL to register with your authorization servers is
     <code>${escapeHtml(publicUrl)}/oauth/callback</code>.</p>
  <p>Health: <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>, <a href="/metrics">/metrics</a>.</p>
</main>
</body>
</html>
`;
  return {
    html,
    csp: `default-src 'none'; style-src 'nonce-${nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  };
}
