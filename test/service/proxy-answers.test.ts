import type { ServerResponse } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ADMIN_KEY,
  putAcme,
  type Recorder,
  type SecurityService,
  startRecorder,
  startSecurityService,
  tokenEndpoint,
} from "../security/harness.js";

/**
 * What the proxy hands back is the API's answer as it came: a small body of known
 * length is read whole and sent in one write, any other streams (api-dispatch.ts).
 * Both must give the client the same status, headers and bytes, and neither may hold
 * the upstream request once the client is gone.
 */
let tw: SecurityService;
let api: Recorder;

beforeAll(async () => {
  tw = await startSecurityService();
  api = await startRecorder();
  tokenEndpoint(api);
  await putAcme(tw, api, "/api");
});
afterAll(async () => {
  await tw.close();
  await api.close();
});

function answerWith(path: string, write: (res: ServerResponse) => void): void {
  api.on(`/api/${path}`, (_req, res) => write(res));
}

describe("the proxy's answers", () => {
  it("hand on a small answer's status, headers and bytes exactly", async () => {
    const body = JSON.stringify({ ok: true, items: [1, 2, 3] });
    answerWith("small", (res) => {
      res.writeHead(201, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "x-upstream": "one",
        "set-cookie": ["a=1", "b=2"],
        "keep-alive": "timeout=5",
      });
      res.end(body);
    });
    const res = await tw.call("GET", "/v1/proxy/c1/small");
    expect(res.status).toBe(201);
    expect(res.text).toBe(body);
    expect(res.headers).toMatchObject({
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(body)),
      "x-upstream": "one",
      "set-cookie": "a=1, b=2",
      "x-content-type-options": "nosniff",
    });
    expect(res.headers["x-request-id"]).toBeDefined();
    expect(res.headers["keep-alive"]).toBeUndefined(); // hop-by-hop
  });

  it("name no type for a body the API sent without one", async () => {
    answerWith("untyped", (res) => {
      res.writeHead(200, { "content-length": "11" });
      res.end("plain bytes");
    });
    const res = await tw.call("GET", "/v1/proxy/c1/untyped");
    expect(res.status).toBe(200);
    expect(res.text).toBe("plain bytes");
    expect(res.headers["content-type"]).toBeUndefined();
  });

  it("stream a large answer and one of unknown length through whole", async () => {
    const large = Buffer.alloc(1024 * 1024, "abcdefgh").toString();
    answerWith("large", (res) => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": large.length });
      res.end(large);
    });
    answerWith("chunked", (res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("first,");
      setImmediate(() => res.end("last"));
    });
    const big = await tw.call("GET", "/v1/proxy/c1/large");
    expect(big.status).toBe(200);
    expect(big.headers["content-length"]).toBe(String(large.length));
    expect(big.text === large).toBe(true);
    const chunked = await tw.call("GET", "/v1/proxy/c1/chunked");
    expect(chunked.text).toBe("first,last");
  });

  it("pass on what an event stream sent at once, not when it ends", async () => {
    let finish!: () => void;
    answerWith("events", (res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
      finish = () => res.end("data: last\n\n");
    });
    const socket = connect(tw.port, "127.0.0.1");
    socket.write(
      `GET /v1/proxy/c1/events HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${ADMIN_KEY}\r\n\r\n`,
    );
    let received = "";
    // The API ends only once the first event is through: a proxy that held it would
    // never pass it, and the test's own timeout would fail it.
    await new Promise<void>((resolve) => {
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString();
        if (received.includes("data: first")) resolve();
      });
    });
    expect(received).not.toContain("data: last");
    const ended = new Promise<void>((resolve) => {
      socket.on("data", () => {
        if (received.includes("data: last")) resolve();
      });
    });
    finish();
    await ended;
    socket.destroy();
  });

  it("keep the length a HEAD speaks of, and a 204's or a 304's headers, with no body", async () => {
    answerWith("head", (res) => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": "42" });
      res.end();
    });
    answerWith("not-modified", (res) => {
      // No length on it: undici 7 (HTTP/1) takes one on a 304 for a body that must come.
      res.writeHead(304, { etag: '"v1"' });
      res.end();
    });
    answerWith("no-content", (res) => {
      res.writeHead(204, { "x-upstream": "none" });
      res.end();
    });
    const head = await tw.call("HEAD", "/v1/proxy/c1/head");
    expect(head.status).toBe(200);
    expect(head.headers["content-length"]).toBe("42");
    const notModified = await tw.call("GET", "/v1/proxy/c1/not-modified");
    expect(notModified.status).toBe(304);
    expect(notModified.headers.etag).toBe('"v1"');
    expect(notModified.text).toBe("");
    const noContent = await tw.call("GET", "/v1/proxy/c1/no-content");
    expect(noContent.status).toBe(204);
    expect(noContent.headers["x-upstream"]).toBe("none");
    expect(noContent.text).toBe("");
  });

  it("answer 502 when the API hangs up inside a small body", async () => {
    answerWith("cut", (res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
      res.write('{"partial":');
      setImmediate(() => res.socket?.destroy());
    });
    const res = await tw.call("GET", "/v1/proxy/c1/cut");
    expect(res.status).toBe(502);
    expect(res.text).not.toContain("partial");
  });

  it("end the upstream request when the client goes away during a streaming answer", async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((resolve) => {
      upstreamClosed = resolve;
    });
    answerWith("endless", (res) => {
      res.on("close", upstreamClosed);
      res.writeHead(200, { "content-type": "text/plain" });
      const chunk = "x".repeat(16 * 1024);
      const pump = () => {
        if (res.destroyed) return;
        if (res.write(chunk)) setImmediate(pump);
        else res.once("drain", pump);
      };
      pump();
    });
    const socket = connect(tw.port, "127.0.0.1");
    socket.write(
      `GET /v1/proxy/c1/endless HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${ADMIN_KEY}\r\n\r\n`,
    );
    await new Promise<void>((resolve) => socket.once("data", () => resolve()));
    socket.destroy();
    await closed; // the test's own timeout fails it if the proxy keeps reading
  });
});
