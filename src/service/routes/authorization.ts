/**
 * The authorization code grant through the service: start it (a redirect to the
 * server, or its URL as JSON for the admin page), and the redirect URL the server
 * sends the person back to, whose page says what happened (callback-outcome.ts,
 * shared with the CLI's loopback server); and the device grant's (RFC 8628) start and
 * withdrawal.
 */
import { TokenwardenError } from "../../core/errors.js";
import { clientMetadataDocument } from "../../oauth/client-registration.js";
import { callbackOutcome, renderCallback } from "../callback-outcome.js";
import { returnTo } from "../connect.js";
import { defineRoute } from "../route.js";
import { CLIENT_METADATA_PATH, type RouteModule } from "./context.js";
import { idParams } from "./resource.js";

export const authorizationRoutes: RouteModule = (app, { tw, publicUrl, redirectUri }) => {
  const clientMetadataUrl = `${publicUrl}${CLIENT_METADATA_PATH}`;
  defineRoute(app, {
    method: "GET",
    url: "/v1/connections/:id/authorize",
    operationId: "startAuthorization",
    summary:
      "Start the authorization code grant: a redirect to the server (or { url } with Accept: application/json)",
    tags: ["authorization"],
    params: idParams,
    responses: {
      200: { description: "Where to send the person", schema: "AuthorizationStart" },
      302: { description: "To the authorization server" },
    },
    handler: async ({ params }, request, reply) => {
      const started = await tw.startAuthorization(params.id, { redirectUri, clientMetadataUrl });
      reply.header("cache-control", "no-store");
      if ((request.headers.accept ?? "").includes("application/json")) {
        return { url: started.url, expiresAt: started.expiresAt, redirectUri };
      }
      return reply.redirect(started.url, 302);
    },
  });

  defineRoute(app, {
    method: "POST",
    url: "/v1/connections/:id/authorize",
    operationId: "startDeviceAuthorization",
    summary:
      "Start the device grant (RFC 8628): the user code and where to enter it; the service polls until the person approves",
    tags: ["authorization"],
    params: idParams,
    responses: {
      200: { description: "The user code and where to enter it", schema: "DeviceAuthorization" },
    },
    handler: async ({ params }, _request, reply) => {
      reply.header("cache-control", "no-store");
      return tw.startDeviceAuthorization(params.id);
    },
  });

  defineRoute(app, {
    method: "DELETE",
    url: "/v1/connections/:id/authorize",
    operationId: "cancelDeviceAuthorization",
    summary:
      "Withdraw the connection's pending device authorization (RFC 8628): no process polls it again; 404 when none is pending",
    tags: ["authorization"],
    params: idParams,
    responses: { 204: { description: "Withdrawn" } },
    handler: async ({ params }, _request, reply) => {
      await tw.cancelDeviceAuthorization(params.id);
      reply.code(204);
    },
  });

  defineRoute(app, {
    method: "GET",
    url: CLIENT_METADATA_PATH,
    operationId: "getClientMetadataDocument",
    summary:
      "Tokenwarden as an OAuth client: the client ID metadata document MCP servers' authorization servers read (used when the public URL is https)",
    tags: ["authorization"],
    // Public: an authorization server fetches it, with no key; it holds nothing secret.
    access: "public",
    responses: { 200: { description: "The document", schema: "ClientMetadataDocument" } },
    handler: async (_input, _request, reply) => {
      reply.header("cache-control", "public, max-age=3600");
      return clientMetadataDocument(clientMetadataUrl, redirectUri);
    },
  });

  const openerOrigin = new URL(publicUrl).origin;
  defineRoute(app, {
    method: "GET",
    url: "/oauth/callback",
    operationId: "completeAuthorization",
    summary: "The redirect URL: completes the authorization and shows a page saying how it went",
    tags: ["authorization"],
    // Public: the browser comes back from the authorization server without a key; the
    // one-time state (bound server-side to one connection) is what it must carry.
    access: "public",
    responses: {
      200: { description: "Authorized", media: "text/html" },
      400: { description: "The link expired or was already used", media: "text/html" },
      403: { description: "The person denied access", media: "text/html" },
      502: { description: "The authorization server failed", media: "text/html" },
    },
    handler: async (_input, request, reply) => {
      const query = new URLSearchParams(request.query as Record<string, string>);
      let outcome: ReturnType<typeof callbackOutcome>;
      try {
        const connection = await tw.completeAuthorization(query);
        // Started from a connect link with a returnUrl: back there (connect.ts).
        const session = await tw.connectSessions.completeByState(query.get("state") ?? "");
        if (session?.returnUrl != null) {
          reply.header("cache-control", "no-store");
          return reply.redirect(returnTo(session.returnUrl, connection.id, connection.status), 303);
        }
        outcome = callbackOutcome({ connection });
      } catch (error) {
        // Not ours: a bug, answered as every other (500, details in the log only).
        if (!(error instanceof TokenwardenError)) throw error;
        outcome = callbackOutcome({ error });
      }
      const page = renderCallback(outcome, openerOrigin);
      reply.code(page.status).headers(page.headers);
      return page.html;
    },
  });
};
