import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseIntegration } from "../../src/core/integration.js";
import { startTestService, type TestService } from "../fixtures/service.js";
import { caught } from "../helpers.js";

/**
 * The integration schema the service publishes (for the admin form, and in the
 * OpenAPI) and the validation the broker does agree on `grantType`: required, except
 * with `mcpServerUrl`, which makes it authorization_code. A real JSON Schema validator
 * (Ajv, draft 2020-12) reads what the service serves.
 */
const API_KEY = "integration-schema-test-key-0123456789";
const MCP_URL = "https://mcp.example.com/mcp";
const TOKEN_URL = "https://auth.example.com/token";

let service: TestService;

beforeAll(async () => {
  service = await startTestService({ apiKey: API_KEY });
});
afterAll(async () => {
  await service?.close();
});

async function api(method: "GET" | "PUT", path: string, body?: unknown) {
  const { status, json } = await service.api(method, path, body);
  return { status, body: json };
}

/** Bodies whose only question is grantType: every other field is fine. */
const BODIES = [
  { body: { key: "mcp-only", mcpServerUrl: MCP_URL }, valid: true },
  { body: { key: "mcp-cc", mcpServerUrl: MCP_URL, grantType: "client_credentials" }, valid: true },
  { body: { key: "plain", grantType: "client_credentials", tokenUrl: TOKEN_URL }, valid: true },
  { body: { key: "no-grant", tokenUrl: TOKEN_URL }, valid: false },
  { body: { key: "no-grant-discovery", discoveryUrl: "https://auth.example.com" }, valid: false },
];

describe("the published integration schema", () => {
  it("GET /v1/schemas: grantType is optional, and required unless there is an MCP server", async () => {
    const { status, body } = await api("GET", "/v1/schemas");
    expect(status).toBe(200);
    const schema = body.integration;
    expect(schema.required).toEqual(["key"]);
    expect(schema.anyOf).toEqual([{ required: ["grantType"] }, { required: ["mcpServerUrl"] }]);
    expect(schema.properties.grantType.description).toContain("mcpServerUrl");

    const validate = new Ajv2020({ strict: false, validateFormats: false }).compile(schema);
    for (const { body: input, valid } of BODIES) {
      expect({ input, valid: validate(input) }).toEqual({ input, valid });
      let parsed = true;
      try {
        parseIntegration(input);
      } catch {
        parsed = false;
      }
      expect({ input, parsed }).toEqual({ input, parsed: valid });
    }
  });

  it("the OpenAPI's request body says the same", async () => {
    const spec = (await api("GET", "/openapi.json")).body;
    const schema =
      spec.paths["/v1/integrations/{key}"].put.requestBody.content["application/json"].schema;
    expect(schema.required ?? []).not.toContain("grantType");
    expect(schema.anyOf).toEqual([{ required: ["grantType"] }, { required: ["mcpServerUrl"] }]);
    // The view always has one.
    expect(spec.components.schemas.IntegrationView.required).toContain("grantType");
  });
});

describe("validation", () => {
  it("neither grantType nor mcpServerUrl: refused, naming grantType", async () => {
    const e = await caught(async () => parseIntegration({ key: "none", tokenUrl: TOKEN_URL }));
    expect(e.code).toBe("invalid_config");
    expect(e.field).toBe("grantType");
    expect(e.message).toBe(
      "grantType: is required (or set mcpServerUrl, which makes it authorization_code)",
    );

    const put = await api("PUT", "/v1/integrations/none", { key: "none", tokenUrl: TOKEN_URL });
    expect(put.status).toBe(400);
    expect(put.body.error.field).toBe("grantType");
    expect(put.body.error.message).toContain("mcpServerUrl");
  });

  it("mcpServerUrl alone: authorization_code, written and shown", async () => {
    const put = await api("PUT", "/v1/integrations/mcp-only", BODIES[0]?.body);
    expect(put.status).toBe(201);
    expect(put.body.grantType).toBe("authorization_code");
    expect((await api("GET", "/v1/integrations/mcp-only")).body.grantType).toBe(
      "authorization_code",
    );
  });

  it("mcpServerUrl with another grant keeps that grant", () => {
    expect(parseIntegration(BODIES[1]?.body).grantType).toBe("client_credentials");
  });
});
