import { describe, expect, it } from "vitest";
import {
  backoffMs,
  canRenewUnattended,
  expiryFor,
  isInRefreshWindow,
  isUsable,
  ManualClock,
  type RefreshSettings,
  refreshWindowOpensAt,
  type TokenSet,
} from "../../src/core/index.js";

const settings: RefreshSettings = {
  session: "auto",
  fixedTtlSeconds: 3600,
  refreshAheadSeconds: 60,
};

function token(issuedAt: number, lifetimeSeconds: number | null, refreshToken?: string): TokenSet {
  return {
    accessToken: "at",
    tokenType: "Bearer",
    issuedAt,
    expiresAt: lifetimeSeconds === null ? null : issuedAt + lifetimeSeconds * 1000,
    raw: {},
    ...(refreshToken === undefined ? {} : { refreshToken }),
  };
}

describe("expiry", () => {
  const t0 = 1_000_000;
  it("auto uses expires_in, then an absolute expiry, then fixedTtlSeconds", () => {
    expect(expiryFor({ expiresInSeconds: 120 }, settings, t0)).toBe(t0 + 120_000);
    expect(expiryFor({ expiresAtMs: t0 + 5000, expiresInSeconds: 120 }, settings, t0)).toBe(
      t0 + 5000,
    );
    expect(expiryFor({}, settings, t0)).toBe(t0 + 3_600_000);
    expect(expiryFor({ expiresInSeconds: 0 }, settings, t0)).toBe(t0 + 3_600_000);
  });
  it("fixed ignores the server; none keeps it but may be null", () => {
    expect(
      expiryFor(
        { expiresInSeconds: 120 },
        { ...settings, session: "fixed", fixedTtlSeconds: 10 },
        t0,
      ),
    ).toBe(t0 + 10_000);
    expect(expiryFor({}, { ...settings, session: "none" }, t0)).toBeNull();
  });
});

describe("refresh window", () => {
  const clock = new ManualClock(0);
  it("opens refreshAheadSeconds before expiry", () => {
    const t = token(0, 3600);
    expect(refreshWindowOpensAt(t, settings)).toBe(3540_000);
    expect(isInRefreshWindow(t, settings, 3539_999)).toBe(false);
    expect(isInRefreshWindow(t, settings, 3540_000)).toBe(true);
  });
  it("is capped at half the lifetime for short tokens", () => {
    const t = token(0, 20);
    expect(refreshWindowOpensAt(t, settings)).toBe(10_000);
  });
  it("never opens for session none or an unknown expiry", () => {
    expect(refreshWindowOpensAt(token(0, 3600), { ...settings, session: "none" })).toBeNull();
    expect(refreshWindowOpensAt(token(0, null), settings)).toBeNull();
  });
  it("serves a token while it has minTtl left, capped at half its lifetime", () => {
    const t = token(clock.now(), 3600);
    expect(isUsable(t, settings, 3589_999, 10)).toBe(true);
    expect(isUsable(t, settings, 3590_000, 10)).toBe(false);
    const short = token(0, 4);
    expect(isUsable(short, settings, 1000, 10)).toBe(true);
    expect(isUsable(short, settings, 2000, 10)).toBe(false);
    expect(isUsable(token(0, 1), { ...settings, session: "none" }, 99_999, 10)).toBe(true);
  });
});

describe("unattended renewal and backoff", () => {
  it("knows which grants can renew without a person", () => {
    const auto = { session: "auto" as const };
    const code = { ...auto, grantType: "authorization_code" as const };
    expect(canRenewUnattended({ ...auto, grantType: "client_credentials" }, undefined)).toBe(true);
    expect(canRenewUnattended(code, token(0, 1))).toBe(false);
    expect(canRenewUnattended(code, token(0, 1, "rt"))).toBe(true);
    expect(canRenewUnattended({ ...code, refreshHook: "./hook.js" }, token(0, 1))).toBe(true);
    // grant refresh_token starts from the refresh token it was given
    const supplied = { ...auto, grantType: "refresh_token" as const };
    expect(canRenewUnattended(supplied, undefined, "given-rt")).toBe(true);
    expect(canRenewUnattended(supplied, undefined)).toBe(false);
    // session none: the first token is obtained, and never renewed
    const none = { session: "none" as const, grantType: "password" as const };
    expect(canRenewUnattended(none, undefined)).toBe(true);
    expect(canRenewUnattended(none, token(0, 1))).toBe(false);
  });
  it("grows exponentially with full jitter up to the cap", () => {
    expect(backoffMs(0, { random: () => 0 })).toBe(1000);
    expect(backoffMs(3, { random: () => 1 })).toBe(8000);
    expect(backoffMs(30, { random: () => 1 })).toBe(300_000);
    expect(backoffMs(3, { random: () => 0.5 })).toBe(4500);
  });
});

describe("refresh token rotation", () => {
  it("keeps the old refresh token when the response has none (RFC 6749 §6)", async () => {
    const { carryRefreshToken } = await import("../../src/core/index.js");
    const next = token(0, 60);
    expect(carryRefreshToken(next, "old").refreshToken).toBe("old");
    expect(carryRefreshToken(token(0, 60, "new"), "old").refreshToken).toBe("new");
    expect(carryRefreshToken(next, undefined).refreshToken).toBeUndefined();
  });
});
