import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { escapeHtml } from "./pages.js";

/**
 * The admin page (`GET /`): three static files, no framework, no external font or
 * CDN, so it works offline. The page holds no logic of its own beyond presentation:
 * it calls the same `/v1` API as any client, with the API key kept in sessionStorage.
 * The files sit in `public/admin/`, two levels up from this module in `src/` and
 * `dist/` alike.
 */
const ASSETS = new URL("../../public/admin/", import.meta.url);

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export function registerAdminPage(app: FastifyInstance, publicUrl: string): void {
  const read = (name: string) => readFileSync(new URL(name, ASSETS), "utf8");
  const index = read("index.html").replaceAll(
    "{{redirectUri}}",
    escapeHtml(`${publicUrl}/oauth/callback`),
  );
  const files: Record<string, { body: string; type: string }> = {
    "/admin/app.js": { body: read("app.js"), type: "text/javascript; charset=utf-8" },
    "/admin/app.css": { body: read("app.css"), type: "text/css; charset=utf-8" },
  };
  app.get("/", { schema: { hide: true } }, async (_request, reply) => {
    reply
      .header("content-type", "text/html; charset=utf-8")
      .header("content-security-policy", CSP)
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer");
    return index;
  });
  for (const [path, file] of Object.entries(files)) {
    app.get(path, { schema: { hide: true } }, async (_request, reply) => {
      reply.header("content-type", file.type).header("x-content-type-options", "nosniff");
      return file.body;
    });
  }
}
