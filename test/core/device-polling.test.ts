import { describe, expect, it } from "vitest";
import { isTransientPollFailure, pollBackoffMs } from "../../src/core/device-polling.js";
import { TokenwardenError } from "../../src/core/errors.js";

/** RFC 8628 §3.5: which failed polls end a device flow, and how long the next one waits. */
describe("a failed device poll", () => {
  const endpoint = (status: number, oauthError?: string) =>
    new TokenwardenError("token_endpoint_error", "refused", {
      status,
      ...(oauthError === undefined ? {} : { oauthError }),
    });

  it("goes on after no answer, a timeout, a 5xx, a 429 or a server saying it is unavailable", () => {
    for (const failure of [
      new TokenwardenError("network_error", "could not reach"),
      new TokenwardenError("timeout", "did not answer"),
      endpoint(503),
      endpoint(502),
      endpoint(429),
      endpoint(500, "server_error"),
      endpoint(400, "temporarily_unavailable"),
    ])
      expect(isTransientPollFailure(failure), failure.message).toBe(true);
  });

  it("ends on the server's refusals, even in a 5xx, and on what retrying cannot mend", () => {
    for (const failure of [
      endpoint(400, "access_denied"),
      endpoint(400, "expired_token"),
      endpoint(401, "invalid_client"),
      endpoint(503, "access_denied"),
      endpoint(404),
      new TokenwardenError("tls_error", "certificate"),
      new TokenwardenError("token_response_invalid", "no access_token"),
      new TokenwardenError("not_found", "connection gone"),
    ])
      expect(isTransientPollFailure(failure), failure.message).toBe(false);
  });

  it("waits the interval doubled per failure, at most a minute, at least the Retry-After asked", () => {
    expect([1, 2, 3, 4, 5, 50].map((n) => pollBackoffMs(5000, n))).toEqual([
      10_000, 20_000, 40_000, 60_000, 60_000, 60_000,
    ]);
    // A server interval longer than the bound is never shortened.
    expect(pollBackoffMs(90_000, 3)).toBe(90_000);
    expect(pollBackoffMs(5000, 1, 45)).toBe(45_000);
    // A Retry-After of an hour is honoured up to five minutes.
    expect(pollBackoffMs(5000, 1, 3600)).toBe(300_000);
  });
});
