/**
 * The authorization code grant's two steps (RFC 6749 §4.1, with state and S256 PKCE,
 * RFC 7636): a redirect to the server, then the callback exchanging the code. The
 * state and the verifier stay server-side, sealed, for a short while, single use.
 */
import type { Clock } from "../core/clock.js";
import { invalidConfig, TokenwardenError } from "../core/errors.js";
import { asTokenwardenError, summarize } from "../core/failure.js";
import { buildAuthorizationRequest, readAuthorizationResponse } from "../oauth/authorization.js";
import type { DpopNonces } from "../oauth/dpop.js";
import { exchangeAuthorizationCode } from "../oauth/token-endpoint.js";
import type { Store } from "../store/store.js";
import type { EventLog } from "./event-log.js";
import type { AuthorizationStartOptions } from "./mcp-servers.js";
import type { ProtocolSupport } from "./protocol-support.js";
import { boundTo, dpopFor, type Loaded, loadConnection, type Renewer } from "./renewer.js";
import type { TokenSource } from "./token-source.js";

export interface AuthorizationFlowContext {
  store: Store;
  clock: Clock;
  events: EventLog;
  renewer: Renewer;
  tokens: TokenSource;
  /** Discovery and `clientAuth: auto` memory (protocol-support.ts). */
  protocol: ProtocolSupport;
  /** How long a started authorization waits for its callback. */
  ttlMs: number;
  /** DPoP nonces the servers handed this process (RFC 9449 §8). */
  dpopNonces: DpopNonces;
}

export class AuthorizationFlow {
  readonly #ctx: AuthorizationFlowContext;

  constructor(ctx: AuthorizationFlowContext) {
    this.#ctx = ctx;
  }

  /**
   * Starts the authorization code grant: a fresh `state` bound to this connection and
   * a PKCE verifier, both kept server-side until the callback, for a short while.
   */
  async start(
    id: string,
    options: AuthorizationStartOptions,
  ): Promise<{ url: string; state: string; expiresAt: string }> {
    const plain = await loadConnection(this.#ctx.store, id);
    if (plain.integration.grantType !== "authorization_code") {
      throw invalidConfig(
        "grantType",
        `integration ${plain.integration.key} does not use authorization_code`,
      );
    }
    // Only now: an MCP server's client may be registered on the way (mcp-servers.ts).
    const loaded = {
      ...plain,
      resolved: await this.#ctx.protocol.prepare(plain.resolved, options),
    };
    const request = buildAuthorizationRequest(loaded.resolved, {
      redirectUri: options.redirectUri,
    });
    const expiresAt = this.#ctx.clock.now() + this.#ctx.ttlMs;
    await this.#ctx.store.putPendingAuthorization({
      state: request.state,
      connectionId: id,
      codeVerifier: request.codeVerifier,
      redirectUri: options.redirectUri,
      expiresAt,
    });
    return {
      url: request.url.toString(),
      state: request.state,
      expiresAt: new Date(expiresAt).toISOString(),
    };
  }

  /**
   * Completes it from the redirect's query; resolves with the connection's id. A state that is unknown, expired or
   * already used is refused before anything else is read.
   */
  async complete(query: URLSearchParams): Promise<string> {
    const state = query.get("state");
    if (state === null || state === "")
      throw invalidConfig("state", "is missing from the callback");
    const pending = await this.#ctx.store.takePendingAuthorization(state, this.#ctx.clock.now());
    if (pending === undefined) {
      throw new TokenwardenError(
        "not_found",
        "this authorization is unknown, expired or already completed: start it again",
        { field: "state" },
      );
    }
    const started = performance.now();
    let loaded = await loadConnection(this.#ctx.store, pending.connectionId);
    try {
      loaded = await this.#prepared(pending.connectionId);
      // RFC 9207: the `iss` in the redirect is checked against the discovered issuer.
      const { code } = readAuthorizationResponse(query, state, loaded.resolved.server);
      const dpop = await dpopFor(loaded.integration, undefined, this.#ctx.dpopNonces);
      const token = boundTo(
        await exchangeAuthorizationCode(
          loaded.resolved,
          { code, redirectUri: pending.redirectUri, codeVerifier: pending.codeVerifier },
          {
            ...this.#ctx.protocol.options(loaded.resolved),
            ...(dpop === undefined ? {} : { dpop }),
          },
        ),
        dpop,
      );
      await this.#ctx.tokens.exclusive(loaded.stored.connection.id, async () => {
        // The authorization replaces whatever token the connection held.
        const current = await loadConnection(this.#ctx.store, loaded.stored.connection.id);
        const after = await this.#ctx.renewer.store(current, token, {
          trigger: "authorize",
          action: "authorize",
          started,
        });
        if (after.stored.token !== undefined) this.#ctx.tokens.remember(after, after.stored.token);
      });
    } catch (error) {
      const failure = asTokenwardenError(error);
      await this.#ctx.events.record(
        { connectionId: loaded.stored.connection.id, integration: loaded.integration.key },
        "authorize",
        "authorize",
        started,
        { error: failure },
      );
      if (failure.oauthError !== "access_denied") {
        await this.#ctx.store.updateState(
          loaded.stored.connection.id,
          { lastError: summarize(failure, this.#ctx.clock.now()) },
          this.#ctx.clock.now(),
        );
      }
      throw failure;
    }
    return pending.connectionId;
  }

  /** The connection with what discovery says about its server filled in. */
  async #prepared(id: string): Promise<Loaded> {
    const loaded = await loadConnection(this.#ctx.store, id);
    return { ...loaded, resolved: await this.#ctx.protocol.prepare(loaded.resolved) };
  }
}
