import type { IncomingMessage, ServerResponse } from "node:http";
import swagger from "@fastify/swagger";
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerOptions,
} from "fastify";
import type { ApiKeyRing } from "../broker/api-keys.js";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { TokenwardenError } from "../core/errors.js";
import { authenticate, PUBLIC } from "./access.js";
import { logBrokerSignals } from "./broker-log.js";
import { registerConnectRoutes } from "./connect.js";
import {
  errorBody,
  fromFrameworkError,
  httpStatusFor,
  INTERNAL_ERROR_BODY,
  retryAfterFor,
} from "./errors.js";
import { loggablePath } from "./log-path.js";
import { ServiceMetrics } from "./metrics.js";
import { openapiOptions } from "./openapi.js";
import { REQUEST_ID_HEADER, requestId } from "./request-id.js";
import { registerRoutes } from "./routes/index.js";
import { TokenBodies } from "./token-bodies.js";
import { type TokenReadLane, tokenReadLane } from "./token-read-lane.js";
import { registerWebhookRoutes } from "./webhooks.js";

export interface ServerOptions {
  tw: Tokenwarden;
  keys: ApiKeyRing;
  publicUrl: string;
  /** The folder module hooks set through the API must lie in; none: refused. */
  hooksDir?: string | undefined;
  /** Origins a connect link may return to (TOKENWARDEN_CONNECT_RETURN_ORIGINS). */
  connectReturnOrigins?: string[] | undefined;
  /** A pino logger configuration, or `false` for none. */
  logger?: FastifyServerOptions["logger"];
  /** Answer cached token reads before Fastify (token-read-lane.ts); on unless `false`. */
  tokenReadLane?: boolean;
}

/**
 * Headers and paths that may carry a secret never reach a log line: the API key, the
 * cookie, and the query string (the OAuth callback's `code`, a proxied call's own
 * parameters). pino's redaction removes the headers; the request serializer below
 * logs the path without its query.
 */
export const LOG_REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
];

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const { tw, keys, publicUrl } = options;
  const metrics = new ServiceMetrics(tw);
  const tokenBodies = new TokenBodies();
  const app = Fastify({
    logger:
      options.logger === undefined || options.logger === false
        ? false
        : {
            ...(typeof options.logger === "object" ? options.logger : {}),
            redact: { paths: LOG_REDACT_PATHS, censor: "[redacted]" },
            serializers: {
              req: (req: { method: string; url: string; ip?: string }) => ({
                method: req.method,
                path: loggablePath(req.url),
                remoteAddress: req.ip,
              }),
            },
          },
    // The caller's x-request-id when sane, else a new one (request-id.ts); Fastify
    // would otherwise take the header as it comes.
    requestIdHeader: false,
    genReqId: requestId,
    // Large enough for an integration with its certificates; the proxy reads its own.
    bodyLimit: 1024 * 1024,
    // Route schemas are validated with zod (route.ts) and only documented here.
    ajv: { customOptions: { strict: false } },
    // A URL that cannot be decoded (`/%zz`) matches no route: say so in our shape.
    frameworkErrors: (_error, request, reply) => {
      // Its generic reply type has no status codes in it; ours is the plain one.
      badUrl(reply as unknown as FastifyReply, request.id);
    },
  });
  app.setValidatorCompiler(() => () => true);

  // Responses are documented (route.ts), not shaped: sent as JSON.stringify sends them.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  await app.register(swagger, openapiOptions(publicUrl));

  // What the broker does on its own (failures, status changes, warnings) is logged.
  const unlog = logBrokerSignals(tw, app.log);
  app.addHook("onClose", async () => {
    unlog();
    metrics.close();
  });

  // A graceful close waits for requests in flight; their keep-alive connections must
  // then end with them, or the close would wait for the clients to hang up.
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
    app.server.closeIdleConnections();
  });
  // Both hooks run on every request, so they are callback hooks: no promise per
  // request when the answer is known at once (the common case).
  app.addHook("onSend", (request, reply, payload, done) => {
    if (closing) reply.header("connection", "close");
    reply.header(REQUEST_ID_HEADER, request.id);
    // No response is ever to be read as another type than the one it says (the
    // callback page and error bodies echo request data).
    reply.header("x-content-type-options", "nosniff");
    const type = reply.getHeader("content-type");
    if (typeof type === "string" && type.startsWith("text/html")) {
      // Defaults for every page; each page's own CSP says more.
      if (!reply.hasHeader("x-frame-options")) reply.header("x-frame-options", "DENY");
      if (!reply.hasHeader("referrer-policy")) reply.header("referrer-policy", "no-referrer");
    }
    done(null, payload);
  });
  app.addHook("onResponse", (request, reply, done) => {
    metrics.observeRequest(request, reply, reply.errorCode);
    done();
  });

  app.decorateRequest("apiKey", null);
  app.decorateReply("errorCode", null);
  app.addHook("onRequest", authenticate(keys));

  app.setErrorHandler((error, request, reply) => {
    const known =
      error instanceof TokenwardenError
        ? error
        : fromFrameworkError(error as { statusCode?: number; code?: string; message: string });
    if (known === undefined) {
      request.log.error({ err: error }, "unexpected failure");
      reply.errorCode = "internal_error";
      return reply.code(500).send(INTERNAL_ERROR_BODY);
    }
    reply.errorCode = known.code;
    if (known.code === "internal_error") {
      // A bug: its details (the cause) go to the log only.
      request.log.error({ err: known.cause ?? known }, "unexpected failure");
    } else if (httpStatusFor(known.code) >= 500) {
      request.log.warn({ code: known.code }, known.message);
    }
    // During a backoff, a database outage, or a server's own Retry-After: when to come back.
    const retryAfter = retryAfterFor(known);
    if (retryAfter !== undefined) reply.header("retry-after", String(retryAfter));
    return reply.code(httpStatusFor(known.code)).send(errorBody(known));
  });
  app.setNotFoundHandler((request, reply) => {
    reply.errorCode = "not_found";
    reply
      .code(404)
      .send(
        errorBody(
          new TokenwardenError(
            "not_found",
            `no route ${request.method} ${request.url.split("?")[0]}`,
          ),
        ),
      );
  });

  registerRoutes(app, {
    tw,
    publicUrl,
    redirectUri: `${publicUrl}/oauth/callback`,
    hooksDir: options.hooksDir,
    metrics,
    tokenBodies,
  });
  registerWebhookRoutes(app, tw);
  registerConnectRoutes(app, {
    tw,
    publicUrl,
    returnOrigins: options.connectReturnOrigins ?? [],
  });
  // Public: it describes the interface this open-source package ships, and nothing
  // configured in this instance (no integration, connection or key).
  app.get("/openapi.json", { config: PUBLIC, schema: { hide: true } }, async () => app.swagger());

  // A request logged at `info` (Fastify's "incoming request" and "request completed")
  // takes Fastify's way, which writes those lines.
  // With no logger (`logger: false`) Fastify's stand-in has no levels and logs nothing.
  const { isLevelEnabled } = app.log as { isLevelEnabled?: (level: string) => boolean };
  const logsRequests = isLevelEnabled?.call(app.log, "info") ?? false;
  if (options.tokenReadLane !== false && !logsRequests) {
    answerFirst(
      app,
      tokenReadLane({ tw, keys, bodies: tokenBodies, metrics, isClosing: () => closing }),
    );
  }
  return app;
}

/**
 * Puts `lane` in front of Fastify on its server: Fastify made the server with its own
 * settings (timeouts, keep-alive) and one `request` listener, which now runs for
 * whatever the lane does not answer. `inject` calls Fastify directly, past the lane.
 */
function answerFirst(app: FastifyInstance, lane: TokenReadLane): void {
  const listeners = app.server.listeners("request");
  const fastify = listeners[0];
  if (listeners.length !== 1 || fastify === undefined)
    throw new Error(`expected Fastify's one request listener, found ${listeners.length}`);
  app.server.removeListener("request", fastify as (...args: unknown[]) => void);
  app.server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    if (!lane(request, response)) fastify.call(app.server, request, response);
  });
}

/** Answered before any hook runs, so it sets what the onSend hook sets elsewhere. */
function badUrl(reply: FastifyReply, id: string): void {
  reply.errorCode = "invalid_request";
  reply
    .code(400)
    .header("x-content-type-options", "nosniff")
    .header(REQUEST_ID_HEADER, id)
    .send(errorBody(new TokenwardenError("invalid_request", "the request URL is not valid")));
}
