/**
 * The connect link's page: what is being connected (integration, scopes, connection)
 * and one form. No script at all; the form carries the CSRF value that the page's
 * cookie holds too (connect.ts checks both).
 */
import { randomBytes } from "node:crypto";
import type { ConnectDescription } from "../broker/connect-sessions.js";
import { escapeHtml } from "./pages.js";

const STYLE = `body { font: 16px/1.5 system-ui, sans-serif; margin: 0; display: grid; place-items: center; min-height: 100vh; background: #f6f7f9; color: #1b1f24; }
main { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 2rem; max-width: 32rem; }
h1 { font-size: 1.25rem; margin: 0 0 .75rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0 0 1rem; }
dt { color: #57606a; } dd { margin: 0; }
label { display: block; margin: .5rem 0; } input[type=text], input[type=password] { width: 100%; padding: .4rem; box-sizing: border-box; }
button { margin-top: .75rem; padding: .5rem 1.25rem; font: inherit; background: #1f6feb; color: #fff; border: 0; border-radius: 6px; cursor: pointer; }
.error { color: #a40e26; }`;

export interface Page {
  html: string;
  csp: string;
}

function page(title: string, body: string, formAction: string[]): Page {
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} - Tokenwarden</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
  const actions = formAction.length === 0 ? "'none'" : formAction.join(" ");
  const csp = `default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action ${actions}; frame-ancestors 'none'`;
  return { html, csp };
}

export function connectPage(description: ConnectDescription, csrf: string, action: string): Page {
  const verb = description.creates ? "Connect" : "Reconnect";
  const scopes =
    description.scopes.length === 0 ? "(none requested)" : description.scopes.join(", ");
  const password = description.grantType === "password";
  const fields = password
    ? `<label>Username <input type="text" name="username" autocomplete="username" required maxlength="1024"></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required maxlength="1024"></label>`
    : "";
  const body = `<h1>${verb} ${escapeHtml(description.displayName)}</h1>
<dl>
<dt>Integration</dt><dd>${escapeHtml(description.displayName)} (${escapeHtml(description.integration)})</dd>
<dt>Connection</dt><dd>${escapeHtml(description.connectionId)}</dd>
${description.environment === "" ? "" : `<dt>Environment</dt><dd>${escapeHtml(description.environment)}</dd>`}
<dt>Access</dt><dd>${escapeHtml(scopes)}</dd>
<dt>Link expires</dt><dd>${escapeHtml(description.expiresAt)}</dd>
</dl>
<p>${password ? "Sign in with your account at this service; the password is stored encrypted and used only to obtain tokens." : "You will sign in at the service and be asked to allow this access."}</p>
<form method="post" action="${escapeHtml(action)}">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
${fields}
<button type="submit">${verb}</button>
</form>`;
  const formAction = ["'self'"];
  if (description.authorizationOrigin !== null) formAction.push(description.authorizationOrigin);
  return page(`${verb} ${description.displayName}`, body, formAction);
}

export function messagePage(title: string, detail: string, ok: boolean, retryHref?: string): Page {
  const retry =
    retryHref === undefined ? "" : `<p><a href="${escapeHtml(retryHref)}">Try again</a></p>`;
  return page(
    title,
    `<h1${ok ? "" : ' class="error"'}>${escapeHtml(title)}</h1>
<p>${escapeHtml(detail)}</p>${retry}`,
    [],
  );
}

export function newCsrfValue(): string {
  return randomBytes(24).toString("base64url");
}
