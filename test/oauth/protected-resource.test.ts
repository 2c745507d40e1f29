import { describe, expect, it } from "vitest";
import {
  protectedResourceMetadataUrl,
  resourceMetadataFromChallenge,
} from "../../src/oauth/protected-resource.js";

/** RFC 9728's two ways to the metadata: the well-known URL, and the 401's challenge. */
describe("where protected resource metadata is (RFC 9728)", () => {
  it("the well-known suffix goes between the host and the resource's path (§3.1)", () => {
    expect(protectedResourceMetadataUrl("https://h.example/mcp")).toBe(
      "https://h.example/.well-known/oauth-protected-resource/mcp",
    );
    expect(protectedResourceMetadataUrl("https://h.example/a/b/")).toBe(
      "https://h.example/.well-known/oauth-protected-resource/a/b",
    );
    expect(protectedResourceMetadataUrl("https://h.example")).toBe(
      "https://h.example/.well-known/oauth-protected-resource",
    );
    expect(protectedResourceMetadataUrl("http://127.0.0.1:8080/mcp?x=1")).toBe(
      "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp?x=1",
    );
  });

  it("resource_metadata is read from a Bearer challenge (§5.1)", () => {
    expect(
      resourceMetadataFromChallenge(
        'Bearer realm="mcp", resource_metadata="https://h.example/.well-known/oauth-protected-resource/mcp", error="invalid_token"',
      ),
    ).toBe("https://h.example/.well-known/oauth-protected-resource/mcp");
    expect(resourceMetadataFromChallenge("Bearer resource_metadata=https://h.example/m")).toBe(
      "https://h.example/m",
    );
    expect(resourceMetadataFromChallenge('Bearer realm="x"')).toBeUndefined();
    expect(resourceMetadataFromChallenge(undefined)).toBeUndefined();
    // Not a parameter that merely ends the same way.
    expect(resourceMetadataFromChallenge('Bearer xresource_metadata="https://e/"')).toBeUndefined();
  });
});
