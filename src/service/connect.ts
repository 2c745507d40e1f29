/**
 * Connect sessions: `POST /v1/connect-sessions`
 * (admin) makes a link; `/connect/<token>` (public: the token is the credential) shows
 * what is being connected and takes one form POST. The POST is CSRF-safe twice over:
 * the browser must send the page's SameSite=Strict cookie with the same random value
 * as the form, and a request whose Origin (or Sec-Fetch-Site) says another site is
 * refused.
 */
import { timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { connectSessionInputSchema } from "../broker/connect-sessions.js";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { TokenwardenError } from "../core/errors.js";
import { PUBLIC } from "./access.js";
import { connectPage, messagePage, newCsrfValue, type Page } from "./connect-page.js";
import { defineRoute } from "./route.js";
import { CLIENT_METADATA_PATH } from "./routes/context.js";

export interface ConnectContext {
  tw: Tokenwarden;
  publicUrl: string;
  returnOrigins: readonly string[];
}

const CSRF_COOKIE = "tw_connect_csrf";

/** An answer of the connect pages in the OpenAPI document: an HTML page. */
const htmlPage = (description: string) => ({
  description,
  content: { "text/html": { schema: { type: "string" } } },
});
/** 32 random bytes, base64url (connect-sessions.ts). */
const tokenParams = z.strictObject({ token: z.string().regex(/^[A-Za-z0-9_-]{43}$/) });

export function registerConnectRoutes(app: FastifyInstance, context: ConnectContext): void {
  const { tw, publicUrl } = context;
  const redirectUri = `${publicUrl}/oauth/callback`;
  const clientMetadataUrl = `${publicUrl}${CLIENT_METADATA_PATH}`;
  const publicOrigin = new URL(publicUrl).origin;
  const secure = publicUrl.startsWith("https:");

  defineRoute(app, {
    method: "POST",
    url: "/v1/connect-sessions",
    operationId: "createConnectSession",
    summary:
      "A connect link for an end user: { connectionId } re-authorizes one, { integration, connectionId, environment, parameters } creates one; answers { url, expiresAt }",
    tags: ["authorization"],
    documentedBody: connectSessionInputSchema,
    responses: { 201: { description: "The link to give the end user", schema: "ConnectSession" } },
    handler: async (_input, request, reply) => {
      const session = await tw.connectSessions.create(request.body ?? {}, {
        returnOrigins: context.returnOrigins,
      });
      reply.code(201).header("cache-control", "no-store");
      return {
        url: `${publicUrl}/connect/${session.token}`,
        expiresAt: session.expiresAt,
        connectionId: session.connectionId,
      };
    },
  });

  app.register(async (scope) => {
    // Only here: the form's body. Elsewhere a form body stays an unsupported type.
    scope.addContentTypeParser(
      "application/x-www-form-urlencoded",
      { parseAs: "string", bodyLimit: 16 * 1024 },
      (_request, body, done) => done(null, new URLSearchParams(body as string)),
    );

    scope.get(
      "/connect/:token",
      {
        config: PUBLIC,
        schema: {
          operationId: "showConnectPage",
          summary: "A connect link's page",
          tags: ["authorization"],
          security: [],
          response: {
            200: htmlPage("The page"),
            404: htmlPage("Unknown, expired or used"),
          },
        },
      },
      async (request, reply) => {
        const token = tokenOf(request);
        if (token === undefined) return send(reply, 404, gonePage());
        let description: Awaited<ReturnType<typeof tw.connectSessions.describe>>;
        try {
          description = await tw.connectSessions.describe(token);
        } catch (error) {
          return sendFailure(reply, error);
        }
        const csrf = newCsrfValue();
        reply.header(
          "set-cookie",
          `${CSRF_COOKIE}=${csrf}; Path=/connect/${token}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`,
        );
        return send(reply, 200, connectPage(description, csrf, `/connect/${token}`));
      },
    );

    scope.post(
      "/connect/:token",
      {
        config: PUBLIC,
        schema: {
          operationId: "submitConnectForm",
          summary: "A connect link's form",
          tags: ["authorization"],
          security: [],
          response: {
            200: htmlPage("Connected"),
            303: { description: "To the authorization server, or to returnUrl" },
            400: htmlPage("Missing or wrong input"),
            403: htmlPage("Not sent from its page"),
            404: htmlPage("Unknown, expired or used"),
          },
        },
      },
      async (request, reply) => {
        const token = tokenOf(request);
        if (token === undefined) return send(reply, 404, gonePage());
        const form = request.body instanceof URLSearchParams ? request.body : new URLSearchParams();
        if (!sameSite(request, publicOrigin) || !csrfMatches(request, form.get("csrf"))) {
          return send(
            reply,
            403,
            messagePage(
              "This form was not sent from its page",
              "Open the link again and use the form there.",
              false,
              `/connect/${token}`,
            ),
          );
        }
        try {
          const description = await tw.connectSessions.describe(token);
          if (description.grantType === "authorization_code") {
            const { url } = await tw.connectSessions.begin(token, redirectUri, clientMetadataUrl);
            reply.header("cache-control", "no-store");
            return reply.redirect(url, 303);
          }
          const username = form.get("username") ?? "";
          const password = form.get("password") ?? "";
          if (username === "" || password === "") {
            return send(
              reply,
              400,
              messagePage(
                "Username and password are required",
                "Fill in both.",
                false,
                `/connect/${token}`,
              ),
            );
          }
          const done = await tw.connectSessions.submitPassword(token, { username, password });
          if (done.returnUrl !== null)
            return reply.redirect(
              returnTo(done.returnUrl, done.connection.id, done.connection.status),
              303,
            );
          return send(
            reply,
            200,
            messagePage(
              "Connected with success!",
              `Connection ${done.connection.id} is ${done.connection.status}. You can close this window.`,
              true,
            ),
          );
        } catch (error) {
          return sendFailure(reply, error, `/connect/${token}`);
        }
      },
    );
  });
}

/** Where a completed connect session sends the person: its returnUrl, saying which and how. */
export function returnTo(returnUrl: string, connectionId: string, status: string): string {
  const url = new URL(returnUrl);
  url.searchParams.set("connectionId", connectionId);
  url.searchParams.set("status", status);
  return url.toString();
}

function tokenOf(request: FastifyRequest): string | undefined {
  const parsed = tokenParams.safeParse(request.params);
  return parsed.success ? parsed.data.token : undefined;
}

/** Another site's page cannot post this form: the browser says where a request comes from. */
function sameSite(request: FastifyRequest, publicOrigin: string): boolean {
  const fetchSite = request.headers["sec-fetch-site"];
  if (fetchSite !== undefined && fetchSite !== "same-origin") return false;
  const origin = request.headers.origin;
  return origin === undefined || origin === publicOrigin;
}

function csrfMatches(request: FastifyRequest, field: string | null): boolean {
  if (field === null || field === "") return false;
  const cookie = (request.headers.cookie ?? "")
    .split(";")
    .map((part) => part.trim())
    .find((part) => part.startsWith(`${CSRF_COOKIE}=`))
    ?.slice(CSRF_COOKIE.length + 1);
  if (cookie === undefined) return false;
  const a = Buffer.from(cookie);
  const b = Buffer.from(field);
  return a.length === b.length && timingSafeEqual(a, b);
}

function gonePage(): Page {
  return messagePage(
    "This link is unknown, expired or already used",
    "Ask for a new connect link.",
    false,
  );
}

function sendFailure(reply: FastifyReply, error: unknown, retryHref?: string): FastifyReply {
  if (!(error instanceof TokenwardenError)) throw error;
  if (error.code === "not_found") return send(reply, 404, gonePage());
  if (error.code === "storage_error" || error.code === "internal_error") throw error;
  const refused = error.code === "token_endpoint_error" || error.code === "needs_reauth";
  return send(
    reply,
    refused ? 400 : 502,
    messagePage(
      refused ? "The service refused these credentials" : "The connection did not complete",
      error.message,
      false,
      refused ? retryHref : undefined,
    ),
  );
}

function send(reply: FastifyReply, status: number, page: Page): FastifyReply {
  return (
    reply
      .code(status)
      .header("content-type", "text/html; charset=utf-8")
      .header("content-security-policy", page.csp)
      .header("cache-control", "no-store")
      // Not no-referrer: with it Chromium sends `Origin: null` on the form's POST. The
      // link's token still never leaves for another origin.
      .header("referrer-policy", "same-origin")
      .send(page.html)
  );
}
