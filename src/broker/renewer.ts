/**
 * One attempt at the authorization server (or the refresh hook) for one connection,
 * recorded as an event and written, success or not. It runs only inside the
 * connection's flight and lease (token-source.ts); what it writes is conditional on
 * the token version the attempt started from, so a late holder never overwrites a
 * newer token. A scheduled renewal that changes no status writes through the
 * write-behind batch (write-behind.ts) with its event and lease release; the rest
 * write one by one, status changes with their webhook events in one transaction.
 */
import type { Clock } from "../core/clock.js";
import type { TokenwardenError } from "../core/errors.js";
import type { EventAction, EventTrigger } from "../core/events.js";
import { asTokenwardenError, classifyFailure, summarize } from "../core/failure.js";
import { isUnattendedGrant } from "../core/grants.js";
import { afterFailure, afterRevoke, afterToken, type StatePatch } from "../core/state.js";
import { carryRefreshToken, type TokenSet } from "../core/token-set.js";
import { DpopNonces } from "../oauth/dpop.js";
import type { HttpClient } from "../oauth/http.js";
import { RefreshHooks } from "../oauth/refresh-hook.js";
import { revokeToken } from "../oauth/revocation.js";
import { type ProtocolOptions, refreshAccessToken } from "../oauth/token-endpoint.js";
import type { RenewalWritten, Store, StoredConnection } from "../store/store.js";
import type { EventLog } from "./event-log.js";
import { requestGrant, runHook } from "./grant-request.js";
import { boundTo, dpopFor, type Loaded, loadConnection } from "./loaded.js";
import type { ProtocolSupport } from "./protocol-support.js";
import { type StatusChange, statusChange } from "./status.js";
import { writeState } from "./webhooks/transitions.js";
import type { BatchedWrite } from "./write-behind.js";

export { boundTo, connectionNotFound, dpopFor, type Loaded, loadConnection } from "./loaded.js";

export interface RenewerContext {
  store: Store;
  clock: Clock;
  random: () => number;
  events: EventLog;
  /** The owner's HTTP client: every request of an attempt goes through its pools. */
  http: HttpClient;
  /** Tells the other processes that this connection changed. */
  publish(id: string): Promise<void>;
  /** A token the database could not take: kept in memory until it can. */
  keepUnwritten(id: string, patch: StatePatch, expectedVersion: number): void;
  /** A status this attempt changed, told after the write succeeded. */
  onStatus?(change: StatusChange): void;
  /** RFC 8693: the current access token of the connection a token exchange names. */
  subjectToken?(connectionId: string): Promise<string>;
  /** DPoP server nonces seen by this process. */
  dpopNonces?: DpopNonces;
  /** Discovery and `clientAuth: auto` memory (protocol-support.ts). */
  protocol: ProtocolSupport;
}

/** What an attempt leaves behind: the connection as it now stands. */
export type AttemptResult = Loaded;

export class Renewer {
  readonly #ctx: RenewerContext;
  readonly #hooks: RefreshHooks;
  readonly #nonces: DpopNonces;

  constructor(ctx: RenewerContext) {
    this.#ctx = ctx;
    this.#hooks = new RefreshHooks(ctx.http);
    this.#nonces = ctx.dpopNonces ?? new DpopNonces();
  }

  /**
   * Obtains the next token. Resolves with the connection as it stands afterwards
   * (with the new token, or with a newer one another holder wrote); rejects with the
   * coded failure after recording it.
   */
  async attempt(
    given: Loaded,
    trigger: EventTrigger,
    batched?: BatchedWrite,
  ): Promise<AttemptResult> {
    let loaded = given;
    const { integration } = loaded;
    const { token, connection } = loaded.stored;
    const consumed =
      token?.refreshToken ??
      (integration.grantType === "refresh_token" && token === undefined
        ? connection.refreshToken
        : undefined);
    let action: EventAction =
      integration.refreshHook !== undefined
        ? "hook"
        : consumed !== undefined
          ? "refresh"
          : "obtain";
    const started = performance.now();
    try {
      const resolved = await this.#ctx.protocol.prepare(loaded.resolved);
      loaded = { stored: loaded.stored, integration, resolved };
      const dpop = await dpopFor(integration, token, this.#nonces);
      const options: ProtocolOptions = {
        ...this.#ctx.protocol.options(loaded.resolved),
        ...(dpop && { dpop }),
      };
      let next: TokenSet;
      if (action === "hook") next = await runHook(this.#hooks, loaded, () => this.#ctx.clock.now());
      else if (consumed === undefined)
        next = await requestGrant(loaded, options, this.#ctx.subjectToken);
      else {
        try {
          next = await refreshAccessToken(loaded.resolved, consumed, options);
        } catch (error) {
          // A password or client credentials grant can start over where a refresh
          // token has died; only the others need a person.
          const failure = asTokenwardenError(error);
          if (!isUnattendedGrant(integration.grantType) || classifyFailure(failure) !== "reauth")
            throw error;
          await this.#record(loaded, trigger, action, started, { error: failure });
          action = "obtain";
          next = await requestGrant(loaded, options, this.#ctx.subjectToken);
        }
      }
      if (action !== "hook") next = boundTo(next, dpop);
      const carried = carryRefreshToken(next, consumed, token?.refreshTokenExpiresAt);
      return await this.#write(loaded, carried, consumed, { trigger, action, started }, batched);
    } catch (error) {
      const failure = asTokenwardenError(error);
      const current = await this.#lostRace(loaded, failure, consumed);
      if (current !== undefined) {
        // Another holder rotated the refresh token first: its token stands.
        await this.#record(loaded, trigger, action, started, {
          error: failure,
          note: "lost a race: another refresh had already replaced this refresh token; its token is kept",
        });
        return current;
      }
      await this.#recordFailure(loaded, failure, { trigger, action, started });
      throw failure;
    }
  }

  /** An authorization code exchange's token, written like any other. */
  async store(
    loaded: Loaded,
    token: TokenSet,
    step: { trigger: EventTrigger; action: EventAction; started: number },
  ): Promise<AttemptResult> {
    return this.#write(loaded, token, undefined, step);
  }

  /**
   * RFC 7009 revocation of the refresh and access tokens at the server (when it has
   * a revocation endpoint), then the tokens are forgotten and the connection is `revoked`.
   */
  async revoke(loaded: Loaded): Promise<void> {
    const { store, clock } = this.#ctx;
    const id = loaded.stored.connection.id;
    const started = performance.now();
    try {
      const { token } = loaded.stored;
      // Discovery only matters when there is something to revoke.
      const resolved =
        token === undefined ? loaded.resolved : await this.#ctx.protocol.prepare(loaded.resolved);
      const options = this.#ctx.protocol.options(resolved);
      let httpStatus: number | null = null;
      if (token !== undefined && resolved.revocationUrl !== undefined) {
        const dpop =
          token.dpopKey === undefined ? undefined : { key: token.dpopKey, nonces: this.#nonces };
        const proven = { ...options, ...(dpop === undefined ? {} : { dpop }) };
        // The refresh token first: revoking it usually takes its access tokens along.
        if (token.refreshToken !== undefined)
          await revokeToken(resolved, token.refreshToken, "refresh_token", proven);
        httpStatus = (await revokeToken(resolved, token.accessToken, "access_token", proven))
          .status;
      }
      await writeState(store, { id, patch: afterRevoke(), now: clock.now(), cause: "revoke" });
      this.#announce(loaded, loaded.stored.state.status, afterRevoke());
      await this.#ctx.publish(id);
      await this.#record(loaded, "manual", "revoke", started, { httpStatus });
    } catch (error) {
      const failure = asTokenwardenError(error);
      await this.#record(loaded, "manual", "revoke", started, { error: failure });
      throw failure;
    }
  }

  /**
   * Writes the new token with its state in one statement, if the token version is
   * still the one the attempt started from. If a newer token was written meanwhile it
   * stands, unless it still holds the refresh token this attempt consumed: then the
   * server has rotated it, and only ours is alive.
   */
  async #write(
    loaded: Loaded,
    token: TokenSet,
    consumed: string | undefined,
    step: { trigger: EventTrigger; action: EventAction; started: number },
    batched?: BatchedWrite,
  ): Promise<AttemptResult> {
    const { store, clock } = this.#ctx;
    const { connection } = loaded.stored;
    const now = clock.now();
    const patch = afterToken(loaded.integration, connection, token, now, this.#ctx.random);
    let base = loaded.stored;
    // A renewal that changes no status owes no lifecycle event: it can be written with
    // others (write-behind.ts). If its condition no longer holds, the loop below finds
    // out what stands, as for any write that lost.
    if (batched !== undefined && patch.status === base.state.status) {
      const event = this.#ctx.events.prepare(
        subjectOf(loaded),
        step.trigger,
        step.action,
        step.started,
        {
          httpStatus: token.httpStatus ?? null,
        },
      );
      let written: RenewalWritten | undefined;
      try {
        written = await batched.writes.write({
          id: connection.id,
          patch,
          expectedVersion: base.state.tokenVersion,
          expectedStatus: base.state.status,
          leaseHolder: batched.lease.holder,
          event,
          topic: batched.topic,
        });
      } catch (error) {
        return this.#keepInMemory(loaded, base, token, patch, step, error);
      }
      if (written !== undefined) {
        batched.lease.releasedWith();
        this.#ctx.events.told(written.event);
        return withToken(loaded, base, token, patch, written.tokenVersion);
      }
    }
    for (;;) {
      let version: number | undefined;
      try {
        version = await writeState(store, {
          id: connection.id,
          patch,
          now,
          expectedVersion: base.state.tokenVersion,
          cause: step.trigger === "authorize" ? "authorize" : "renew",
        });
      } catch (error) {
        return this.#keepInMemory(loaded, base, token, patch, step, error);
      }
      if (version !== undefined) {
        this.#announce(loaded, base.state.status, patch);
        await this.#ctx.publish(connection.id);
        await this.#record(loaded, step.trigger, step.action, step.started, {
          httpStatus: token.httpStatus ?? null,
        });
        return withToken(loaded, base, token, patch, version);
      }
      const current = await loadConnection(store, connection.id);
      const rotated =
        consumed !== undefined &&
        token.refreshToken !== consumed &&
        current.stored.token?.refreshToken === consumed;
      if (!rotated) {
        await this.#record(loaded, step.trigger, step.action, step.started, {
          httpStatus: token.httpStatus ?? null,
          note: "a newer token was written meanwhile; this one was not stored",
        });
        return current;
      }
      base = current.stored;
    }
  }

  /** A token the database could not take: served, and kept until it can be written. */
  async #keepInMemory(
    loaded: Loaded,
    base: StoredConnection,
    token: TokenSet,
    patch: StatePatch,
    step: { trigger: EventTrigger; action: EventAction; started: number },
    error: unknown,
  ): Promise<AttemptResult> {
    const failure = asTokenwardenError(error);
    if (failure.code !== "storage_error") throw failure;
    this.#ctx.keepUnwritten(loaded.stored.connection.id, patch, base.state.tokenVersion);
    await this.#record(loaded, step.trigger, step.action, step.started, {
      error: failure,
      succeeded: true,
      note: "the database is unavailable: the new token is kept in memory and written when it returns",
    });
    return withToken(loaded, base, token, patch, base.state.tokenVersion + 1);
  }

  /** Whether a failure only means another holder replaced the token first. */
  async #lostRace(
    loaded: Loaded,
    failure: TokenwardenError,
    consumed: string | undefined,
  ): Promise<Loaded | undefined> {
    if (classifyFailure(failure) !== "reauth" || consumed === undefined) return undefined;
    const current = await loadConnection(this.#ctx.store, loaded.stored.connection.id).catch(
      () => undefined,
    );
    if (current === undefined) return undefined;
    const replaced =
      current.stored.state.tokenVersion !== loaded.stored.state.tokenVersion &&
      current.stored.token?.refreshToken !== consumed;
    return replaced ? current : undefined;
  }

  async #recordFailure(
    loaded: Loaded,
    error: TokenwardenError,
    step: { trigger: EventTrigger; action: EventAction; started: number },
  ): Promise<void> {
    const { store, clock, random } = this.#ctx;
    const now = clock.now();
    const { state, connection } = loaded.stored;
    const patch = afterFailure(state, classifyFailure(error), summarize(error, now), now, {
      random,
      retryAfterSeconds: error.retryAfterSeconds,
    });
    let written = false;
    try {
      // Conditional: a failure must not mark a connection whose token another holder
      // has renewed meanwhile.
      written =
        (await writeState(store, {
          id: connection.id,
          patch,
          now,
          expectedVersion: state.tokenVersion,
          cause: step.trigger === "authorize" ? "authorize" : "renew",
        })) !== undefined;
    } catch {
      // The failure itself is what the caller hears about; the database being away
      // is reported by the next read.
    } finally {
      await this.#record(loaded, step.trigger, step.action, step.started, { error });
    }
    if (written) this.#announce(loaded, state.status, patch);
  }

  #announce(
    loaded: Loaded,
    previous: StoredConnection["state"]["status"],
    patch: StatePatch,
  ): void {
    const change = statusChange(loaded.stored.connection, previous, patch);
    if (change !== undefined) this.#ctx.onStatus?.(change);
  }

  #record(
    loaded: Loaded,
    trigger: EventTrigger,
    action: EventAction,
    started: number,
    result: Parameters<EventLog["record"]>[4],
  ): Promise<void> {
    return this.#ctx.events.record(subjectOf(loaded), trigger, action, started, result);
  }
}

function subjectOf(loaded: Loaded): { connectionId: string; integration: string } {
  return { connectionId: loaded.stored.connection.id, integration: loaded.integration.key };
}

function withToken(
  loaded: Loaded,
  base: StoredConnection,
  token: TokenSet,
  patch: StatePatch,
  tokenVersion: number,
): Loaded {
  const { token: _token, ...state } = patch;
  // Named fields and Object.assign rather than spreads followed by fields (slow in V8,
  // see core/events.ts storedEvent): this runs once per renewal.
  const stored: StoredConnection = {
    connection: base.connection,
    state: Object.assign({}, base.state, state, { tokenVersion }),
    token,
    createdAt: base.createdAt,
    updatedAt: base.updatedAt,
  };
  return { stored, integration: loaded.integration, resolved: loaded.resolved };
}
