/**
 * DPoP (RFC 9449): the connection's tokens are bound to a key pair, and every request
 * that uses or obtains them carries a proof signed with it. The private key is kept
 * sealed with the connection's token set (core/token-set.ts `dpopKey`), so a refresh
 * in any process proves possession of the same key.
 */
import { createHash, randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import type { HttpResponse } from "./http.js";
import { headerValue } from "./http.js";

/** ES256: the one algorithm every DPoP server must accept in practice (RFC 9449 §5.1). */
export const DPOP_ALG = "ES256";

/** A private JWK, as kept sealed. */
export type DpopPrivateJwk = JWK;

/**
 * Server nonces (RFC 9449 §8), by origin: the last one each server handed out. Held
 * per Tokenwarden instance, never module-global.
 */
export class DpopNonces {
  readonly #byOrigin = new Map<string, string>();

  get(url: URL): string | undefined {
    return this.#byOrigin.get(url.origin);
  }

  /** Remembers the `DPoP-Nonce` header of a response, if it has one. */
  learn(url: URL, headers: HttpResponse["headers"] | Headers): string | undefined {
    const value =
      headers instanceof Headers ? headers.get("dpop-nonce") : headerValue(headers["dpop-nonce"]);
    // RFC 9449 §8.1: NQCHAR, printable ASCII without space or quote; anything else is ignored.
    if (value === undefined || value === null || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(value))
      return undefined;
    this.#byOrigin.set(url.origin, value);
    return value;
  }
}

/** What a request needs to carry a proof: the key and where nonces are remembered. */
export interface DpopContext {
  key: DpopPrivateJwk;
  nonces: DpopNonces;
}

export async function generateDpopKey(): Promise<DpopPrivateJwk> {
  const { privateKey } = await generateKeyPair(DPOP_ALG, { extractable: true });
  return exportJWK(privateKey);
}

/** The public half of a private JWK (the `jwk` header of a proof, the `jkt` thumbprint's input). */
export function publicJwk(key: DpopPrivateJwk): JWK {
  const { kty, crv, x, y, n, e } = key;
  return Object.fromEntries(
    Object.entries({ kty, crv, x, y, n, e }).filter(([, value]) => value !== undefined),
  ) as JWK;
}

/**
 * A proof for one request (RFC 9449 §4.2): `htu` without query and fragment, a fresh
 * `jti`, the server's nonce when it gave one, and `ath` (the token's SHA-256) when the
 * request carries an access token.
 */
export async function dpopProof(
  dpop: DpopContext,
  request: { method: string; url: URL; accessToken?: string; nonce?: string },
  nowMs: number,
): Promise<string> {
  const htu = `${request.url.origin}${request.url.pathname}`;
  const nonce = request.nonce ?? dpop.nonces.get(request.url);
  const claims: Record<string, unknown> = {
    jti: randomUUID(),
    htm: request.method.toUpperCase(),
    htu,
    iat: Math.floor(nowMs / 1000),
  };
  if (nonce !== undefined) claims.nonce = nonce;
  if (request.accessToken !== undefined)
    claims.ath = createHash("sha256").update(request.accessToken, "ascii").digest("base64url");
  const key = await importJWK(dpop.key, DPOP_ALG);
  return new SignJWT(claims)
    .setProtectedHeader({ typ: "dpop+jwt", alg: DPOP_ALG, jwk: publicJwk(dpop.key) })
    .sign(key);
}

/**
 * Whether a refused request asks for a nonce: a token endpoint's 400 `use_dpop_nonce`
 * (§8), or a resource server's 401 with `WWW-Authenticate: DPoP error="use_dpop_nonce"`
 * (§9). The caller retries once with the nonce it just learned.
 */
export function asksForNonce(status: number, body: string, wwwAuthenticate?: string): boolean {
  if (status === 400) return body.includes("use_dpop_nonce");
  if (status === 401) return (wwwAuthenticate ?? "").includes("use_dpop_nonce");
  return false;
}
