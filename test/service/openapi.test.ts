import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestService, type TestService } from "../fixtures/service.js";

/**
 * /openapi.json as a client author meets it: valid for Redocly's linter (0 errors),
 * every answer described, and a typed client generated from it (openapi-typescript)
 * that type-checks against the real shapes and refuses a wrong one.
 */
const API_KEY = "openapi-test-key-0123456789";
const run = promisify(execFile);
let service: TestService;
let dir: string;
let document: {
  openapi: string;
  paths: Record<string, Record<string, { operationId?: string; responses?: object }>>;
  components: { schemas: Record<string, unknown> };
};
let documentFile: string;

beforeAll(async () => {
  service = await startTestService({ apiKey: API_KEY });
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-openapi-"));
  const res = await fetch(`${service.url}/openapi.json`);
  expect(res.status).toBe(200);
  const text = await res.text();
  document = JSON.parse(text);
  documentFile = join(dir, "openapi.json");
  await writeFile(documentFile, text);
});
afterAll(async () => {
  await service.close();
  await rm(dir, { recursive: true, force: true });
});

describe("/openapi.json", () => {
  it("lints with 0 errors in Redocly", async () => {
    const require = createRequire(import.meta.url);
    const cli = join(dirname(require.resolve("@redocly/cli/package.json")), "bin", "cli.js");
    const { stdout } = await run(process.execPath, [cli, "lint", "--format=json", documentFile], {
      env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
      maxBuffer: 16 * 1024 * 1024,
    });
    const report = JSON.parse(stdout) as {
      totals: { errors: number };
      problems: Array<{ severity: string; message: string }>;
    };
    expect(report.problems.filter((p) => p.severity === "error")).toEqual([]);
    expect(report.totals.errors).toBe(0);
  });

  it("is OpenAPI 3.1 with one operation id per operation and every answer described", () => {
    expect(document.openapi).toBe("3.1.0");
    const ids: string[] = [];
    for (const [path, item] of Object.entries(document.paths)) {
      expect(path).not.toContain("{*}");
      for (const operation of Object.values(item)) {
        expect(operation.operationId, path).toMatch(/^[a-z][A-Za-z]+$/);
        ids.push(operation.operationId as string);
        expect(JSON.stringify(operation.responses), path).not.toContain("Default Response");
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeGreaterThan(20);
    expect(Object.keys(document.components.schemas)).toEqual(
      expect.arrayContaining(["ErrorBody", "ConnectionView", "IntegrationView", "AccessToken"]),
    );
    // Every error answer is the one error body.
    const token = document.paths["/v1/connections/{id}/token"]?.get?.responses as Record<
      string,
      { content?: Record<string, { schema: { $ref?: string } }> }
    >;
    expect(token["200"]?.content?.["application/json"]?.schema.$ref).toBe(
      "#/components/schemas/AccessToken",
    );
    for (const status of ["400", "401", "403", "404", "default"]) {
      expect(token[status]?.content?.["application/json"]?.schema.$ref, status).toBe(
        "#/components/schemas/ErrorBody",
      );
    }
  });

  it("generates a typed client whose use type-checks, and whose misuse does not", async () => {
    const types = astToString(await openapiTS(new URL(`file://${documentFile}`)));
    await writeFile(join(dir, "api.d.ts"), types);
    // A small client over fetch, typed by the generated paths.
    await writeFile(
      join(dir, "use.ts"),
      `import type { components, operations, paths } from "./api.js";

type Json<R> = R extends { content: { "application/json": infer B } } ? B : never;
type TokenAnswer = Json<paths["/v1/connections/{id}/token"]["get"]["responses"][200]>;
type ErrorAnswer = components["schemas"]["ErrorBody"];

export async function bearer(base: string, key: string, id: string): Promise<string> {
  const res = await fetch(\`\${base}/v1/connections/\${encodeURIComponent(id)}/token\`, {
    headers: { authorization: \`Bearer \${key}\` },
  });
  if (!res.ok) {
    const failure = (await res.json()) as ErrorAnswer;
    const code: "not_found" | "forbidden" | string = failure.error.code;
    throw new Error(\`\${code}: \${failure.error.message}\`);
  }
  const token = (await res.json()) as TokenAnswer;
  const expiry: string | null = token.expiresAt;
  void expiry;
  return \`\${token.header.name}: \${token.header.value}\`;
}

type Connection = Json<operations["getConnection"]["responses"][200]>;
export function needsPerson(c: Connection): boolean {
  // A secret is only ever { set }.
  const hasSecret: boolean = c.clientSecret.set;
  return hasSecret && (c.status === "needs_reauth" || c.status === "pending_authorization");
}

export function wrong(c: Connection, t: TokenAnswer): void {
  // @ts-expect-error a status the service never gives
  const s: typeof c.status = "expired";
  // @ts-expect-error secrets are never returned as strings
  const secret: string = c.clientSecret;
  // @ts-expect-error the token has no refresh token
  void t.refreshToken;
  void s;
  void secret;
}
`,
    );
    const program = ts.createProgram([join(dir, "use.ts")], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
      types: [],
      skipLibCheck: false,
    });
    const problems = ts
      .getPreEmitDiagnostics(program)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    expect(problems).toEqual([]);
  });
});
