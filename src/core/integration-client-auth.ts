/**
 * How a client authenticates at the token endpoint: the methods, the client key that
 * signs a JWT (private_key_jwt, client_secret_jwt, jwt_bearer assertions), TLS (trust
 * and mutual TLS for tls_client_auth), and the checks that tie them together.
 */
import { z } from "zod";
import { headerTextSchema } from "./integration-fields.js";

export const CLIENT_AUTH_METHODS = [
  "basic",
  "basic_raw",
  "body",
  "query",
  // Beyond client secrets (oauth/client-auth.ts).
  "auto",
  "client_secret_jwt",
  "private_key_jwt",
  "tls_client_auth",
  "none",
] as const;
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];

export const CLIENT_KEY_ALGS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "HS256",
  "HS384",
  "HS512",
] as const;
export type ClientKeyAlg = (typeof CLIENT_KEY_ALGS)[number];

/** A private key as PEM (PKCS#8, PKCS#1 or SEC1) or as a JWK holding its private part. */
export function isPrivateKeyText(value: string): boolean {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(value)) return true;
  try {
    const jwk: unknown = JSON.parse(value);
    return (
      typeof jwk === "object" &&
      jwk !== null &&
      typeof (jwk as { kty?: unknown }).kty === "string" &&
      typeof (jwk as { d?: unknown }).d === "string"
    );
  } catch {
    return false;
  }
}

/** The client key fields; `clientPrivateKey` is a secret. */
export const clientKeyFields = {
  /** For `private_key_jwt` (and grants that sign): a PEM or a JWK, a secret. */
  clientPrivateKey: z
    .string()
    .refine(isPrivateKeyText, "must be a PEM private key or a JWK with its private part")
    .optional(),
  clientKeyId: headerTextSchema.min(1, "must not be empty").optional(),
  clientKeyAlg: z.enum(CLIENT_KEY_ALGS).optional(),
};

/** The algorithms a client key may sign with (private_key_jwt, jwt_bearer assertions). */
export const CLIENT_KEY_ALGORITHMS = CLIENT_KEY_ALGS;
export const tlsSchema = z
  .strictObject({
    mode: z.enum(["verify", "trust", "off"]).default("verify"),
    ca: z.string().optional(),
    cert: z.string().optional(),
    key: z.string().optional(),
  })
  .superRefine((tls, ctx) => {
    if (tls.mode === "trust" && tls.ca === undefined) {
      ctx.addIssue({ code: "custom", path: ["ca"], message: "is required when mode is trust" });
    }
    if ((tls.cert === undefined) !== (tls.key === undefined)) {
      const missing = tls.cert === undefined ? "cert" : "key";
      ctx.addIssue({
        code: "custom",
        path: [missing],
        message: "mutual TLS needs both cert and key",
      });
    }
    for (const field of ["ca", "cert"] as const) {
      const pem = tls[field];
      if (pem !== undefined && !pem.includes("-----BEGIN CERTIFICATE-----")) {
        ctx.addIssue({ code: "custom", path: [field], message: "must be a PEM certificate" });
      }
    }
    if (tls.key !== undefined && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(tls.key)) {
      ctx.addIssue({ code: "custom", path: ["key"], message: "must be a PEM private key" });
    }
  });

export function checkClientAuth(
  integration: {
    clientAuth: ClientAuthMethod;
    clientPrivateKey?: string | undefined;
    clientKeyAlg?: ClientKeyAlg | undefined;
    tls: { cert?: string | undefined };
  },
  ctx: z.RefinementCtx,
): void {
  const alg = integration.clientKeyAlg;
  if (integration.clientAuth === "private_key_jwt") {
    if (integration.clientPrivateKey === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["clientPrivateKey"],
        message: "is required for clientAuth private_key_jwt",
      });
    }
    if (alg?.startsWith("HS")) {
      ctx.addIssue({
        code: "custom",
        path: ["clientKeyAlg"],
        message: "private_key_jwt signs with an asymmetric algorithm (RS, PS, ES or EdDSA)",
      });
    }
  }
  if (
    integration.clientAuth === "client_secret_jwt" &&
    alg !== undefined &&
    !alg.startsWith("HS")
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["clientKeyAlg"],
      message: "client_secret_jwt signs with HS256, HS384 or HS512",
    });
  }
  if (integration.clientAuth === "tls_client_auth" && integration.tls.cert === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["tls", "cert"],
      message: "tls_client_auth needs the tls.cert and tls.key pair",
    });
  }
}
