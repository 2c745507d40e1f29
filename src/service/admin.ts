/**
 * The admin page (`GET /`): static ES modules and a stylesheet, no framework, no
 * external font or CDN, so it works offline. The page holds no knowledge of its own
 * beyond presentation: it calls the same `/v1` API as any client (with the API key kept
 * in sessionStorage), and what it must know about the model (secret fields, each
 * grant's fields, the statuses and what each allows) comes from `GET /v1/schemas`
 * (admin-schemas.ts). The files sit in `public/admin/`, two levels up from this
 * module in `src/` and `dist/` alike. They are public: they hold no data, and the page
 * asks for a key before it calls anything.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { FastifyInstance } from "fastify";
import { PUBLIC } from "./access.js";
import { escapeHtml } from "./pages.js";

const ASSETS = new URL("../../public/admin/", import.meta.url);

/**
 * The page's one third-party module, eventsource-parser (a spec-conformant parser of
 * the event-stream format), served from its package as it is installed.
 */
function vendorParser(): string {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve("eventsource-parser/package.json");
  return readFileSync(join(dirname(manifest), "dist", "index.js"), "utf8");
}

/** The CSP hash of the page's inline import map (the only inline script). */
function importMapHashes(html: string): string[] {
  return [...html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)].map(
    (match) =>
      `'sha256-${createHash("sha256")
        .update(match[1] as string)
        .digest("base64")}'`,
  );
}

export function registerAdminPage(app: FastifyInstance, publicUrl: string): void {
  const read = (name: string) => readFileSync(new URL(name, ASSETS), "utf8");
  const index = read("index.html").replaceAll(
    "{{redirectUri}}",
    escapeHtml(`${publicUrl}/oauth/callback`),
  );
  const csp = [
    "default-src 'none'",
    ["script-src 'self'", ...importMapHashes(index)].join(" "),
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
  const script = "text/javascript; charset=utf-8";
  const files: Record<string, { body: string; type: string }> = {
    "/admin/app.css": { body: read("app.css"), type: "text/css; charset=utf-8" },
    "/admin/vendor/eventsource-parser.js": { body: vendorParser(), type: script },
  };
  for (const name of readdirSync(ASSETS)) {
    if (name.endsWith(".js")) files[`/admin/${name}`] = { body: read(name), type: script };
  }
  app.get("/", { config: PUBLIC, schema: { hide: true } }, async (_request, reply) => {
    reply
      .header("content-type", "text/html; charset=utf-8")
      .header("content-security-policy", csp)
      // Keeps the opener link to the authorization popup (its callback page posts back).
      .header("cross-origin-opener-policy", "same-origin-allow-popups")
      .header("referrer-policy", "no-referrer");
    return index;
  });
  for (const [path, file] of Object.entries(files)) {
    app.get(path, { config: PUBLIC, schema: { hide: true } }, async (_request, reply) => {
      reply.header("content-type", file.type).header("x-content-type-options", "nosniff");
      return file.body;
    });
  }
}
