import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiscoveryCache } from "../../src/broker/discovery-cache.js";
import { ManualClock, parseIntegration } from "../../src/core/index.js";
import {
  type DiscoveredServer,
  discoverServer,
  maxAge,
  metadataCandidates,
} from "../../src/oauth/index.js";
import { json, type QuirkServer, startQuirkServer } from "../fixtures/quirk-server.js";
import { caught } from "../helpers.js";

const transport = parseIntegration({
  key: "t",
  grantType: "client_credentials",
  tokenUrl: "https://x.example/token",
});
let server: QuirkServer;
beforeAll(async () => {
  server = await startQuirkServer();
});
afterAll(async () => {
  await server.close();
});

describe("metadata URLs", () => {
  it("an issuer tries OpenID Connect's path, then RFC 8414's, each naming that issuer", () => {
    expect(metadataCandidates("https://as.example/tenant/")).toEqual([
      {
        url: "https://as.example/tenant/.well-known/openid-configuration",
        issuer: "https://as.example/tenant",
      },
      {
        url: "https://as.example/.well-known/oauth-authorization-server/tenant",
        issuer: "https://as.example/tenant",
      },
    ]);
  });
  it("a metadata URL is read as given; the issuer is what the well-known part leaves", () => {
    expect(
      metadataCandidates("https://as.example/.well-known/oauth-authorization-server/t1"),
    ).toEqual([
      {
        url: "https://as.example/.well-known/oauth-authorization-server/t1",
        issuer: "https://as.example/t1",
      },
    ]);
    expect(
      metadataCandidates("https://as.example/t1/.well-known/openid-configuration")[0]?.issuer,
    ).toBe("https://as.example/t1");
  });
  it("Cache-Control: max-age, no-store, nothing", () => {
    expect(maxAge("public, max-age=600")).toBe(600);
    expect(maxAge("no-store")).toBe(0);
    expect(maxAge(undefined)).toBeUndefined();
  });
});

describe("metadata validation", () => {
  it("falls back to RFC 8414's path on a 404, and reads max-age", async () => {
    server.on("/.well-known/oauth-authorization-server/as1", (_req, res) =>
      json(
        res,
        200,
        { issuer: server.url("/as1"), token_endpoint: server.url("/tok") },
        {
          "cache-control": "max-age=120",
        },
      ),
    );
    const found = await discoverServer(server.url("/as1"), transport);
    expect(found.metadata.token_endpoint).toBe(server.url("/tok"));
    expect(found.maxAgeSeconds).toBe(120);
  });

  it("refuses a document naming another issuer (RFC 8414 §3.3)", async () => {
    server.on("/as2/.well-known/openid-configuration", (_req, res) =>
      json(res, 200, { issuer: "https://evil.example", token_endpoint: server.url("/tok") }),
    );
    const e = await caught(() => discoverServer(server.url("/as2"), transport));
    expect(e.code).toBe("invalid_config");
    expect(e.message).toContain("RFC 8414");
  });

  it("refuses an endpoint over plain http off this machine", async () => {
    server.on("/as3/.well-known/openid-configuration", (_req, res) =>
      json(res, 200, { issuer: server.url("/as3"), token_endpoint: "http://tokens.example/token" }),
    );
    const e = await caught(() => discoverServer(server.url("/as3"), transport));
    expect(e.message).toContain("token_endpoint");
  });
});

describe("the discovery cache", () => {
  const document = (n: number, maxAgeSeconds?: number): DiscoveredServer => ({
    metadata: { issuer: "https://as.example", token_endpoint: `https://as.example/t${n}` },
    maxAgeSeconds,
    metadataUrl: "https://as.example/.well-known/openid-configuration",
  });

  it("keeps a document for its max-age within bounds, re-reads after, serves the last good one on failure", async () => {
    const clock = new ManualClock(0);
    const answers: Array<DiscoveredServer | Error> = [
      document(1, 5),
      document(2, 10 ** 9),
      new Error("down"),
    ];
    let calls = 0;
    const cache = new DiscoveryCache(clock, async () => {
      const next = answers[calls++];
      if (next instanceof Error || next === undefined) throw next ?? new Error("none left");
      return next;
    });
    const read = async () => (await cache.metadata("https://as.example", transport)).token_endpoint;
    expect(await Promise.all([read(), read()])).toEqual([
      "https://as.example/t1",
      "https://as.example/t1",
    ]);
    expect(calls).toBe(1);
    clock.advance(59_000); // max-age 5 is raised to the 60-second floor
    expect(await read()).toBe("https://as.example/t1");
    expect(calls).toBe(1);
    clock.advance(2_000);
    expect(await read()).toBe("https://as.example/t2");
    expect(calls).toBe(2);
    clock.advance(24 * 3600 * 1000 + 1000); // a huge max-age is capped at a day
    expect(await read()).toBe("https://as.example/t2"); // re-read failed: the last good one
    expect(calls).toBe(3);
  });
});
