/**
 * What a caller asks of a connection's token, on top of the token path
 * (token-source.ts): the current one, a refresh or an authorization now whatever is
 * held, a revocation at the server (RFC 7009), and a DPoP proof (RFC 9449 §4) for a
 * call a workflow makes itself.
 */
import type { Clock } from "../core/clock.js";
import { invalidConfig } from "../core/errors.js";
import { isHttpUrl } from "../core/integration.js";
import { type DpopNonces, dpopProof } from "../oauth/dpop.js";
import type { Store } from "../store/store.js";
import { withLease } from "./lease.js";
import { connectionNotFound, loadConnection, type Renewer } from "./renewer.js";
import type { CacheEntry, TokenSource } from "./token-source.js";
import type { ConnectionView } from "./views.js";

export interface ConnectionTokensContext {
  store: Store;
  clock: Clock;
  holderId: string;
  tokens: TokenSource;
  renewer: Renewer;
  /** Default `minTtlSeconds` of `getToken`. */
  minTtlSeconds: number;
  dpopNonces: DpopNonces;
  /** The connection as callers see it, after an action. */
  view(id: string): Promise<ConnectionView>;
}

/** Extra time on top of `timeoutMs` before a revoke's lease lapses (two requests). */
const REVOKE_LEASE_MARGIN_MS = 2000;

export class ConnectionTokens {
  readonly #ctx: ConnectionTokensContext;

  constructor(ctx: ConnectionTokensContext) {
    this.#ctx = ctx;
  }

  /**
   * The cache entry of a token valid for at least `minTtlSeconds`. The hot path is a
   * map lookup and a comparison: no database read while the cached token is good.
   */
  async entry(id: string, minTtlSeconds: number): Promise<CacheEntry> {
    const { tokens } = this.#ctx;
    return (
      tokens.cached(id, minTtlSeconds) ??
      (await tokens.token(id, { trigger: "demand", minTtlSeconds }))
    );
  }

  /** A new token now, whatever the held one's age: "manual" (refresh) or "authorize". */
  async renewNow(id: string, trigger: "manual" | "authorize"): Promise<ConnectionView> {
    const stored = await this.#ctx.store.getConnection(id);
    if (stored === undefined) throw connectionNotFound(id);
    await this.#ctx.tokens.token(id, {
      trigger,
      minTtlSeconds: this.#ctx.minTtlSeconds,
      afterVersion: stored.state.tokenVersion,
    });
    return this.#ctx.view(id);
  }

  /**
   * Revokes at the server, then forgets the tokens. It waits for a refresh in flight
   * in this process, and holds the lease against the others.
   */
  async revoke(id: string): Promise<ConnectionView> {
    const { store, clock, holderId, tokens, renewer } = this.#ctx;
    await tokens.exclusive(id, async () => {
      const loaded = await loadConnection(store, id);
      const leaseMs = loaded.resolved.timeoutMs * 2 + REVOKE_LEASE_MARGIN_MS;
      await withLease(
        { store, clock, holderId },
        id,
        leaseMs,
        async () => false,
        async () => {
          tokens.forget(id);
          await renewer.revoke(await loadConnection(store, id));
        },
      );
      tokens.forget(id);
    });
    return this.#ctx.view(id);
  }

  /** A DPoP proof bound to the current token (`ath`), with the server's nonce if known. */
  async dpopProof(
    id: string,
    request: { method: string; url: string },
  ): Promise<{ proof: string }> {
    const entry = await this.entry(id, this.#ctx.minTtlSeconds);
    const key = entry.token.dpopKey;
    if (entry.integration.dpop !== true || key === undefined)
      throw invalidConfig("dpop", `connection ${id} does not bind its tokens with DPoP`);
    if (!isHttpUrl(request.url)) throw invalidConfig("url", "must be an absolute http(s) URL");
    const url = new URL(request.url);
    const proof = await dpopProof(
      { key, nonces: this.#ctx.dpopNonces },
      { method: request.method, url, accessToken: entry.token.accessToken },
      Date.now(),
    );
    return { proof };
  }
}
