import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenwardenError } from "../../src/core/errors.js";
import { parseConnection, parseIntegration, resolveIntegration } from "../../src/core/index.js";
import { apiUrl } from "../../src/oauth/api-url.js";
import {
  type Recorder,
  type SecurityService,
  sendJson,
  startRecorder,
  startSecurityService,
  tokenEndpoint,
} from "./harness.js";

/**
 * The invariant behind rules 4 and 5, checked on generated input: whatever the path
 * or the parameter value, a request goes to its origin and under its prefix, or is
 * refused with the right code. The generators lean on the characters that matter
 * (`.` `/` `\` `%` `?` `#` `@` `:` `;` hex digits, control characters, non-ASCII).
 */
const TRICKY = [
  ".",
  ".",
  "/",
  "/",
  "\\",
  "%",
  "2",
  "e",
  "E",
  "f",
  "F",
  "5",
  "c",
  "C",
  "?",
  "#",
  "@",
  ":",
  ";",
  "a",
  "x",
  "\u0000",
  "\t",
  "\n",
  "é",
  " ",
];
const trickyString = (maxLength: number) =>
  fc
    .array(
      fc.oneof(
        fc.constantFrom(...TRICKY),
        fc.string({ maxLength: 2 }),
        fc.constantFrom(
          "%2e",
          "%2E",
          "%2f",
          "%5c",
          "%25",
          "..",
          "//",
          "\\\\",
          "http://evil.example/",
          "//evil.example",
        ),
      ),
      { maxLength },
    )
    .map((parts) => parts.join(""));

/** One round of percent-decoding of ASCII, as an upstream server would do it. */
function decodeOnce(text: string): string {
  return text.replace(/%([0-7][0-9A-Fa-f])/g, (_w, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

function refusedWith(error: unknown, codes: string[]): boolean {
  return error instanceof TokenwardenError && codes.includes(error.code);
}

const BASE = "https://api.example.com:8443/tenant/v2";
const config = {
  apiBaseUrl: BASE,
  allowedApiOrigins: ["https://files.example.com"],
  requestParams: { headers: {}, query: {} },
};

describe("generated paths (apiUrl)", () => {
  it("stay on an allowed origin and, when relative, under apiBaseUrl's path, even after one more decoding", () => {
    fc.assert(
      fc.property(trickyString(12), (path) => {
        let url: URL;
        try {
          url = apiUrl(config, path);
        } catch (error) {
          return refusedWith(error, ["invalid_request"]);
        }
        if (url.origin === "https://files.example.com")
          return /^https:\/\/files\.example\.com/i.test(path);
        expect(url.origin).toBe("https://api.example.com:8443");
        if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(path)) {
          expect(url.pathname === "/tenant/v2" || url.pathname.startsWith("/tenant/v2/")).toBe(
            true,
          );
          // An upstream that decodes once more still finds no way up, and no other separator.
          const decoded = decodeOnce(url.pathname.slice("/tenant/v2".length));
          expect(decoded.split("/")).not.toContain("..");
          expect(decoded).not.toContain("\\");
        }
        return true;
      }),
      { numRuns: 3000 },
    );
  });
});

describe("generated parameter values (URL templates)", () => {
  const integration = parseIntegration({
    key: "gen",
    grantType: "client_credentials",
    clientId: "app",
    clientSecret: "s3cret",
    parameters: ["host", "seg", "q"],
    tokenUrl: "https://{host}.auth.example.com/oauth/{seg}/token?aud={q}&x=1",
    apiBaseUrl: "https://api.example.com/{seg}/v1",
  });

  it("keep the token request on its origin, its path shape and its query", () => {
    fc.assert(
      fc.property(
        fc.oneof(trickyString(6), fc.stringMatching(/^[a-z0-9-]{1,10}$/)),
        trickyString(10),
        trickyString(10),
        (host, seg, q) => {
          let resolved: ReturnType<typeof resolveIntegration>;
          try {
            resolved = resolveIntegration(
              integration,
              parseConnection({ id: "c", integration: "gen", parameters: { host, seg, q } }),
            );
          } catch (error) {
            return refusedWith(error, ["invalid_config"]);
          }
          const token = new URL(resolved.tokenUrl ?? "");
          expect(token.hostname).toBe(`${host.toLowerCase()}.auth.example.com`);
          expect(token.protocol).toBe("https:");
          expect(token.username + token.password + token.hash).toBe("");
          const parts = token.pathname.split("/");
          expect(parts.length).toBe(4);
          expect([parts[0], parts[1], parts[3]]).toEqual(["", "oauth", "token"]);
          expect(decodeURIComponent(parts[2] as string)).toBe(seg);
          expect([...token.searchParams.keys()]).toEqual(["aud", "x"]);
          expect(token.searchParams.get("aud")).toBe(q);
          const api = new URL(resolved.apiBaseUrl as string);
          expect(api.origin).toBe("https://api.example.com");
          expect(api.pathname.split("/").length).toBe(3);
          return true;
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe("generated paths through the running proxy", () => {
  let tw: SecurityService;
  let api: Recorder;

  beforeAll(async () => {
    tw = await startSecurityService();
    api = await startRecorder();
    tokenEndpoint(api);
    api.on("/tenant/api/*", (req, res) => sendJson(res, 200, { target: req.target }));
    await tw.call("PUT", "/v1/integrations/acme", {
      body: {
        grantType: "client_credentials",
        tokenUrl: `${api.origin}/token`,
        clientId: "app",
        clientSecret: "s3cret",
        apiBaseUrl: `${api.origin}/tenant/api`,
      },
    });
    await tw.call("PUT", "/v1/connections/c1", { body: { integration: "acme" } });
  });
  afterAll(async () => {
    await tw.close();
    await api.close();
  });

  it("forward under apiBaseUrl or answer 400, never anywhere else", async () => {
    // Characters a raw request line can carry (no space, control or non-ASCII byte).
    const segment = fc
      .array(
        fc.constantFrom(
          ".",
          "..",
          "/",
          "\\",
          "%2e",
          "%2E",
          "%2f",
          "%2F",
          "%5c",
          "%25",
          "%252e",
          ";",
          "a",
          "b",
          "%3F",
          "@",
          ":",
          "http:",
          "//x",
        ),
        { maxLength: 8 },
      )
      .map((parts) => parts.join(""));
    await fc.assert(
      fc.asyncProperty(segment, async (rest) => {
        const res = await tw.raw(`/v1/proxy/c1/${rest}`);
        expect([200, 400, 404], `${rest} answered ${res.status}`).toContain(res.status);
        return true;
      }),
      { numRuns: 150 },
    );
    const outside = api.seen
      .map((r) => r.target)
      .filter((t) => t !== "/token" && !t.startsWith("/tenant/api/"));
    expect(outside).toEqual([]);
    const forwarded = api.seen.filter((r) => r.target.startsWith("/tenant/api/"));
    for (const { target } of forwarded) {
      expect(decodeOnce(target.split("?")[0] as string).split("/")).not.toContain("..");
    }
  });
});
