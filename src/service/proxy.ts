import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ApiRequest } from "../broker/api-call.js";
import { forwardableRequestHeaders, forwardableResponseHeaders } from "../broker/api-call.js";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { invalidConfig } from "../core/errors.js";
import { ID_PATTERN } from "../core/integration.js";
import type { ServiceMetrics } from "./metrics.js";

/**
 * `ANY /v1/proxy/:id/*`: forwards to `apiBaseUrl` + path with the token placed,
 * streaming both ways. A body small enough to hold (known length up to 1 MiB) is
 * held so that a refused token can be refreshed and the call sent again; a bigger or
 * chunked body streams straight through and is not retried.
 */
const REPLAYABLE_BODY_LIMIT = 1024 * 1024;

const METHODS = ["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT", "OPTIONS"] as const;

export function registerProxy(
  app: FastifyInstance,
  tw: Tokenwarden,
  metrics: ServiceMetrics,
): void {
  app.register(async (scope) => {
    // Bodies are not parsed here: they are forwarded as they come.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_request, _payload, done) => done(null, undefined));
    scope.route({
      method: [...METHODS],
      url: "/v1/proxy/:id/*",
      schema: {
        summary:
          "Forward to the API with the token placed; one refresh and retry on a retryOn status",
        tags: ["proxy"],
      },
      handler: (request, reply) => forward(tw, metrics, request, reply),
    });
  });
}

async function forward(
  tw: Tokenwarden,
  metrics: ServiceMetrics,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const { id, "*": rest } = request.params as { id: string; "*": string };
  if (!ID_PATTERN.test(id)) throw invalidConfig("id", "is not a valid connection id");
  const queryAt = request.url.indexOf("?");
  const path = `/${rest}${queryAt === -1 ? "" : request.url.slice(queryAt)}`;
  const apiRequest: ApiRequest = {
    method: request.method,
    path,
    headers: forwardableRequestHeaders(request.headers),
    body: await bodyOf(request),
  };
  const res = await tw.forward(id, apiRequest);
  metrics.proxyRequests.inc({ status: String(res.status) });
  reply.code(res.status).headers(forwardableResponseHeaders(res.headers));
  return reply.send(res.body);
}

async function bodyOf(request: FastifyRequest): Promise<ApiRequest["body"]> {
  const length = request.headers["content-length"];
  const chunked = request.headers["transfer-encoding"] !== undefined;
  if (!chunked && (length === undefined || length === "0")) return null;
  if (!chunked && Number(length) <= REPLAYABLE_BODY_LIMIT) {
    const chunks: Buffer[] = [];
    for await (const chunk of request.raw) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  return request.raw;
}
