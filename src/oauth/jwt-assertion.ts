/**
 * RFC 7523 §2.1 / §3: a JWT that stands for the client's (or a service account's)
 * authorization grant, signed with the integration's private key. A new one per
 * token request (fresh `jti`, `iat` and `exp`), so a captured assertion is soon
 * worthless.
 */
import { createPrivateKey, type KeyObject, randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { invalidConfig } from "../core/errors.js";
import type { ResolvedIntegration } from "../core/resolve.js";

export type AssertionConfig = Pick<
  ResolvedIntegration,
  "assertion" | "clientPrivateKey" | "clientKeyId" | "clientKeyAlg" | "clientId" | "tokenUrl"
>;

/** The private key, PEM or JWK (as JSON), as a KeyObject; never quoted in an error. */
export function loadPrivateKey(text: string | undefined): KeyObject {
  if (text === undefined) throw invalidConfig("clientPrivateKey", "is not set");
  try {
    const trimmed = text.trim();
    return trimmed.startsWith("{")
      ? createPrivateKey({
          key: JSON.parse(trimmed) as import("node:crypto").JsonWebKey,
          format: "jwk",
        })
      : createPrivateKey(trimmed);
  } catch {
    throw invalidConfig("clientPrivateKey", "is not a private key Node.js can read");
  }
}

/** The algorithm a key signs with when `clientKeyAlg` does not say. */
export function defaultAlgorithm(key: KeyObject): string {
  switch (key.asymmetricKeyType) {
    case "rsa":
    case "rsa-pss":
      return key.asymmetricKeyType === "rsa" ? "RS256" : "PS256";
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === "prime256v1") return "ES256";
      if (curve === "secp384r1") return "ES384";
      break;
    }
    case "ed25519":
      return "EdDSA";
  }
  throw invalidConfig(
    "clientKeyAlg",
    "is required for this kind of key (RSA, P-256, P-384 and Ed25519 have defaults)",
  );
}

export async function signAssertion(config: AssertionConfig, nowMs: number): Promise<string> {
  const key = loadPrivateKey(config.clientPrivateKey);
  const alg = config.clientKeyAlg ?? defaultAlgorithm(key);
  const spec = config.assertion;
  const iat = Math.floor(nowMs / 1000);
  const header = {
    alg,
    typ: "JWT",
    ...(config.clientKeyId === undefined ? {} : { kid: config.clientKeyId }),
  };
  return new SignJWT({ ...(spec?.claims ?? {}) })
    .setProtectedHeader(header)
    .setIssuer(spec?.issuer ?? config.clientId)
    .setSubject(spec?.subject ?? config.clientId)
    .setAudience(spec?.audience ?? config.tokenUrl ?? "")
    .setIssuedAt(iat)
    .setExpirationTime(iat + (spec?.lifetimeSeconds ?? 300))
    .setJti(randomUUID())
    .sign(key);
}
