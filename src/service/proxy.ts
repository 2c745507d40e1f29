/**
 * `ANY /v1/proxy/:id/*`: forwards to `apiBaseUrl` + path with the token placed,
 * streaming both ways. A body small enough to hold (known length up to 1 MiB) is
 * held so that a refused token can be refreshed and the call sent again; a bigger or
 * chunked body streams straight through and is not retried.
 *
 * The path forwarded is the one the client sent, percent-encoding and all, not the
 * router's decoded `*`: decoding it once here and once more upstream is how `%252e`
 * becomes `..`. It must stay under `apiBaseUrl` (api-url.ts).
 */
import { Readable } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { invalidConfig, TokenwardenError } from "../core/errors.js";
import { ID_PATTERN } from "../core/integration.js";
import type { ApiRequest } from "../oauth/api-call.js";
import { forwardableRequestHeaders, forwardableResponseHeaders } from "../oauth/api-call.js";
import { checkRelativePath } from "../oauth/api-url.js";
import { CLIENT, connectionLimits } from "./access.js";
import type { ServiceMetrics } from "./metrics.js";
import { errorResponses, responseObject } from "./route.js";

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
      config: CLIENT,
      schema: {
        operationId: "proxy", // one per method in /openapi.json (openapi.ts)
        summary:
          "Forward to the API with the token placed; one refresh and retry on a retryOn status",
        tags: ["proxy"],
        response: proxyResponses(),
      },
      handler: (request, reply) => forward(tw, metrics, request, reply),
    });
  });
}

/** The API's own answer, whatever it is, or ours when the call could not be made. */
function proxyResponses(): Record<string, unknown> {
  return {
    ...Object.fromEntries(
      Object.entries(errorResponses({ url: "/v1/proxy/:id/*", access: "client", takesInput: true }))
        .filter(([status]) => status !== "default")
        .map(([status, response]) => [status, responseObject(response)]),
    ),
    default: {
      description:
        "The API's answer as it came (any status, headers and body); or an error body of ours (502, 503, 504) when it could not be reached",
      content: { "*/*": { schema: {} } },
    },
  };
}

async function forward(
  tw: Tokenwarden,
  metrics: ServiceMetrics,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const { id, "*": decodedRest } = request.params as { id: string; "*": string };
  if (!ID_PATTERN.test(id)) throw invalidConfig("id", "is not a valid connection id");
  const { rest, query } = rawRest(request.url, decodedRest);
  // Refused before anything else happens (no token is read, no refresh is started).
  checkRelativePath(`/${rest}`);
  const limits = connectionLimits(request, tw, id);
  if (limits !== undefined) await limits;
  const apiRequest: ApiRequest = {
    method: request.method,
    path: `/${rest}${query}`,
    headers: forwardableRequestHeaders(request.headers),
    body: hasBody(request) ? await bodyOf(request) : null,
  };
  const res = await tw.forwardHeld(id, apiRequest);
  metrics.proxyRequests.inc({ status: String(res.status) });
  reply.code(res.status).headers(forwardableResponseHeaders(res.headers));
  // Bytes go out in one write; but Fastify would name a type for bytes that came
  // without one, so those go as the stream they were.
  const { body } = res;
  if (Buffer.isBuffer(body) && res.headers["content-type"] === undefined)
    return reply.send(Readable.from([body], { objectMode: false }));
  return reply.send(body);
}

/**
 * The part of the request target after `/v1/proxy/<id>/`, as sent, and the query.
 * The route matched, so the target is `/<v1>/<proxy>/<id>/<rest>` in some spelling
 * of each of the first three segments, none holding a `/` (an encoded one does not
 * split a segment); an absolute-form target (`http://host/v1/...`) is first cut to
 * its path, as the router does. The router's decoded `*` must agree.
 */
function rawRest(url: string, decodedRest: string): { rest: string; query: string } {
  let target = url;
  if (!target.startsWith("/")) {
    const origin = /^https?:\/\/[^/]*/.exec(target);
    if (origin === null) throw badPath("the request target is not a path");
    target = target.slice(origin[0].length);
  }
  if (target.includes("#")) throw badPath("the request target holds a #");
  const queryAt = target.indexOf("?");
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  const query = queryAt === -1 ? "" : target.slice(queryAt);
  // The rest starts after the fourth `/`.
  let slash = -1;
  for (let seen = 0; seen < 4; seen++) {
    slash = path.indexOf("/", slash + 1);
    if (slash === -1) throw badPath("the proxied path could not be read unambiguously");
  }
  const rest = path.slice(slash + 1);
  const decoded = rest.includes("%") ? decodedOrUndefined(rest) : rest; // nothing to decode
  if (decoded !== decodedRest) throw badPath("the proxied path could not be read unambiguously");
  // An absolute URL or another host in place of a path is never meant for apiBaseUrl.
  if (URL_OR_ROOTED.test(decoded))
    throw badPath("the proxied path must be a path under apiBaseUrl, not a URL");
  return { rest, query };
}

function decodedOrUndefined(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

const URL_OR_ROOTED = /^(https?:|[/\\])/i;

function badPath(message: string): TokenwardenError {
  return new TokenwardenError("invalid_request", message, { field: "path" });
}

/** Whether the request has a body at all (most proxied calls are GETs without one). */
function hasBody(request: FastifyRequest): boolean {
  const length = request.headers["content-length"];
  return (
    request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0")
  );
}

async function bodyOf(request: FastifyRequest): Promise<NonNullable<ApiRequest["body"]>> {
  const length = request.headers["content-length"];
  const chunked = request.headers["transfer-encoding"] !== undefined;
  if (!chunked && Number(length) <= REPLAYABLE_BODY_LIMIT) {
    const chunks: Buffer[] = [];
    for await (const chunk of request.raw) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  return request.raw;
}
