/**
 * /openapi.json (OpenAPI 3.1, from @fastify/swagger): the routes as route.ts
 * describes them, every answer's body a component generated from the zod schemas in
 * response-schemas.ts, and two repairs of what the generator cannot say itself: the
 * proxy's wildcard becomes a named `{path}` parameter (`{*}` is not a valid name),
 * and a route serving several methods gets one operation id per method.
 */
import type { SwaggerOptions } from "@fastify/swagger";
import { RESPONSE_COMPONENTS } from "./response-schemas.js";
import { jsonSchemaOf } from "./route.js";

type Json = Record<string, unknown>;

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

export function openapiOptions(publicUrl: string): SwaggerOptions {
  return {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Tokenwarden",
        version: "0.1.0",
        description:
          "Keeps OAuth 2.0 access tokens valid for the API calls of integration workflows.",
        license: { name: "MIT", identifier: "MIT" },
      },
      servers: [{ url: publicUrl }],
      components: {
        securitySchemes: {
          apiKey: {
            type: "http",
            scheme: "bearer",
            description: "An API key: `tokenwarden apikey create`, or printed on a first start",
          },
        },
        schemas: componentSchemas(),
      },
      security: [{ apiKey: [] }],
    },
    transformObject: (document) =>
      finishDocument((document as unknown as { openapiObject: Json }).openapiObject),
  } as SwaggerOptions;
}

/** The response components, as JSON Schema of what is sent (zod's output side). */
function componentSchemas(): Record<string, Json> {
  const schemas: Record<string, Json> = {};
  for (const [name, schema] of Object.entries(RESPONSE_COMPONENTS)) {
    const { $defs, ...rest } = jsonSchemaOf(schema, "output") as Json & { $defs?: Json };
    // A schema named by zod itself comes back as a reference to its own definition.
    schemas[name] = rest.$ref === `#/$defs/${name}` ? ($defs?.[name] as Json) : rest;
    // Schemas zod names (`.meta({ id })`) become components of their own.
    for (const [id, def] of Object.entries($defs ?? {})) schemas[id] = def as Json;
  }
  return JSON.parse(JSON.stringify(schemas).replaceAll('"#/$defs/', '"#/components/schemas/'));
}

/** The repairs named above, on the generated document. */
export function finishDocument(document: Json): Json {
  const paths = (document.paths ?? {}) as Record<string, Record<string, unknown>>;
  const finished: Record<string, Record<string, unknown>> = {};
  for (const [path, item] of Object.entries(paths)) {
    const wildcard = path.includes("{*}");
    const operations = Object.entries(item).filter(([method]) => HTTP_METHODS.includes(method));
    const shared = operations.length > 1 && new Set(operations.map(([, op]) => op)).size === 1;
    const out: Record<string, unknown> = { ...item };
    for (const [method, operation] of operations) {
      const op = structuredClone(operation) as Json;
      if (shared && typeof op.operationId === "string")
        op.operationId = `${op.operationId}${method[0]?.toUpperCase()}${method.slice(1)}`;
      if (wildcard) op.parameters = withPathParameter(op.parameters);
      out[method] = op;
    }
    finished[wildcard ? path.replace("{*}", "{path}") : path] = out;
  }
  return { ...document, paths: finished };
}

function withPathParameter(parameters: unknown): Json[] {
  const kept = ((parameters ?? []) as Json[]).filter(
    (p) => !(p.in === "path" && (p.name === "*" || p.name === "path")),
  );
  return [
    ...kept,
    {
      name: "path",
      in: "path",
      required: true,
      description:
        "The rest of the path under the integration's apiBaseUrl, slashes included (sent as received, percent-encoding kept)",
      schema: { type: "string" },
    },
  ];
}
