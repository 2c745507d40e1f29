import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { type Clock, systemClock } from "../core/clock.js";
import type { ConnectionStatus } from "../core/connection.js";
import { invalidConfig, TokenwardenError } from "../core/errors.js";
import type { EventAction, EventTrigger, TokenEvent } from "../core/events.js";
import type { Integration } from "../core/integration.js";
import {
  backoffMs,
  canRenewUnattended,
  isInRefreshWindow,
  isUsable,
  refreshLeadMs,
  refreshWindowOpensAt,
} from "../core/refresh-policy.js";
import { type ResolvedIntegration, resolveIntegration } from "../core/resolve.js";
import { carryRefreshToken, type TokenSet } from "../core/token-set.js";
import { buildAuthorizationRequest, readAuthorizationResponse } from "../oauth/authorization.js";
import { closeDispatchers } from "../oauth/http.js";
import { revokeToken } from "../oauth/revocation.js";
import {
  exchangeAuthorizationCode,
  refreshAccessToken,
  requestClientCredentialsGrant,
  requestPasswordGrant,
} from "../oauth/token-endpoint.js";
import { type OpenStoreOptions, openStore } from "../store/open.js";
import type { ConnectionFilter, StatePatch, Store, StoredConnection } from "../store/store.js";
import { type ApiRequest, type ApiResponse, callApi } from "./api-call.js";
import { type CatalogueChanges, CatalogueWriter, type PutIntegrationOptions } from "./catalogue.js";
import { asTokenwardenError, classifyFailure, summarize } from "./failure.js";
import { runRefreshHook } from "./refresh-hook.js";
import { Scheduler, type SchedulerOptions } from "./scheduler.js";
import { SingleFlight } from "./single-flight.js";
import {
  type AccessToken,
  accessTokenView,
  type ConnectionView,
  connectionView,
  type IntegrationView,
  integrationView,
} from "./views.js";

export interface TokenwardenOptions extends OpenStoreOptions {
  /** An already open store (tests, embedding); otherwise `database` is opened. */
  store?: Store;
  clock?: Clock;
  /** `false` turns the built-in scheduler off (one-shot CLI commands). */
  scheduler?: boolean | SchedulerOptions;
  /** Names this process in leases; unique per process by default. */
  holderId?: string;
  /** Random source for jitter (tests make it deterministic). */
  random?: () => number;
  /** Default `minTtlSeconds` of `getToken`. */
  minTtlSeconds?: number;
  /** How long a started authorization waits for its callback. */
  authorizationTtlMs?: number;
}

/** What `fetch` accepts: the usual `RequestInit` fields. */
export interface FetchInit {
  method?: string;
  headers?: ConstructorParameters<typeof Headers>[0];
  body?: string | Uint8Array | URLSearchParams | ReadableStream<Uint8Array> | null;
}

export interface GetTokenOptions {
  /** The token must stay valid this long (capped at half its lifetime). Default 10. */
  minTtlSeconds?: number;
}

/** Extra time on top of `timeoutMs` before a refresh lease lapses. */
const LEASE_MARGIN_MS = 2000;
/** How often a process waiting on another's refresh looks again. */
const WAIT_POLL_MS = { first: 10, max: 100 };

interface Loaded {
  stored: StoredConnection;
  integration: Integration;
  resolved: ResolvedIntegration;
}

interface CacheEntry {
  token: TokenSet;
  integration: Integration;
  resolved: ResolvedIntegration;
  view: AccessToken;
}

interface Renewal {
  entry: CacheEntry;
  /** Whether this call obtained a new token (or only found a good one). */
  renewed: boolean;
}

type Decision =
  | { kind: "use"; token: TokenSet }
  | { kind: "renew" }
  | { kind: "fail"; error: TokenwardenError };

interface RenewRequest {
  trigger: EventTrigger;
  minTtlSeconds: number;
  /** Manual refresh: a token newer than this version satisfies it. */
  afterVersion?: number;
  /** Retry after the API refused this access token: any other valid token satisfies it. */
  rejectedAccessToken?: string;
}

/**
 * The broker: keeps each connection's token valid, once, across every process sharing
 * the store. Library users hold one of these; the service and the CLI are thin
 * adapters over it.
 */
export class Tokenwarden extends EventEmitter<{ event: [TokenEvent] }> {
  readonly store: Store;
  readonly clock: Clock;
  readonly holderId: string;
  readonly #ownsStore: boolean;
  readonly #random: () => number;
  readonly #minTtlSeconds: number;
  readonly #authorizationTtlMs: number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #flights = new SingleFlight<string, Renewal>();
  readonly #scheduler: Scheduler | undefined;
  #closed = false;
  #unsubscribe: (() => Promise<void>) | undefined;

  static async open(options: TokenwardenOptions = {}): Promise<Tokenwarden> {
    const store = options.store ?? (await openStore(options));
    const tw = new Tokenwarden(store, options, options.store === undefined);
    tw.#unsubscribe = await store.subscribeChanges((message) => tw.#onChange(message));
    return tw;
  }

  private constructor(store: Store, options: TokenwardenOptions, ownsStore: boolean) {
    super();
    this.store = store;
    this.#ownsStore = ownsStore;
    this.clock = options.clock ?? systemClock;
    this.holderId =
      options.holderId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
    this.#random = options.random ?? Math.random;
    this.#minTtlSeconds = options.minTtlSeconds ?? 10;
    this.#authorizationTtlMs = options.authorizationTtlMs ?? 10 * 60_000;
    if (options.scheduler !== false) {
      const schedulerOptions = options.scheduler === true ? {} : (options.scheduler ?? {});
      this.#scheduler = new Scheduler(
        store,
        this.clock,
        (id) => this.#renewScheduled(id),
        schedulerOptions,
      );
      this.#scheduler.start();
    }
  }

  /** The scheduler's last observed lag in ms (for metrics). */
  get schedulerLagMs(): number {
    return this.#scheduler?.lastLagMs ?? 0;
  }

  // Integrations ------------------------------------------------------------------

  /**
   * Creates or replaces an integration (catalogue.ts): a secret left out keeps the
   * stored one, `null` removes it; a move to a new destination must carry the secrets.
   */
  async putIntegration(
    input: unknown,
    options: PutIntegrationOptions = {},
  ): Promise<IntegrationView> {
    return this.writeCatalogue((catalogue) => catalogue.putIntegration(input, options));
  }

  async getIntegration(key: string): Promise<IntegrationView> {
    const stored = await this.store.getIntegration(key);
    if (stored === undefined)
      throw new TokenwardenError("not_found", `integration ${key} does not exist`);
    return integrationView(stored);
  }

  async listIntegrations(): Promise<IntegrationView[]> {
    return (await this.store.listIntegrations()).map(integrationView);
  }

  async deleteIntegration(key: string): Promise<void> {
    if (!(await this.store.deleteIntegration(key))) {
      throw new TokenwardenError("not_found", `integration ${key} does not exist`);
    }
  }

  // Connections -------------------------------------------------------------------

  /** Creates or replaces a connection (catalogue.ts), validated against its integration. */
  async putConnection(input: unknown): Promise<ConnectionView> {
    return this.writeCatalogue((catalogue) => catalogue.putConnection(input));
  }

  /**
   * Catalogue writes in one transaction (an import file): all of them land or none.
   * Caches are dropped and other processes told only after the commit. `fn` must go
   * through the catalogue it is given: on SQLite anything else waits for the commit.
   */
  async writeCatalogue<T>(fn: (catalogue: CatalogueWriter) => Promise<T>): Promise<T> {
    let changes: CatalogueChanges | undefined;
    const result = await this.store.transaction(async (store) => {
      const catalogue = new CatalogueWriter(store, this.clock);
      changes = catalogue.changes;
      return fn(catalogue);
    });
    for (const id of changes?.connections ?? []) {
      this.#cache.delete(id);
      await this.#publish(`connection:${id}`);
    }
    for (const key of changes?.integrations ?? []) {
      for (const [id, entry] of this.#cache)
        if (entry.integration.key === key) this.#cache.delete(id);
      await this.#publish(`integration:${key}`);
    }
    return result;
  }

  async getConnection(id: string): Promise<ConnectionView> {
    const stored = await this.store.getConnection(id);
    if (stored === undefined) throw notFound(id);
    return connectionView(stored);
  }

  async listConnections(filter: ConnectionFilter = {}): Promise<ConnectionView[]> {
    return (await this.store.listConnections(filter)).map(connectionView);
  }

  async deleteConnection(id: string): Promise<void> {
    this.#cache.delete(id);
    if (!(await this.store.deleteConnection(id))) throw notFound(id);
    await this.#publish(`connection:${id}`);
  }

  async listEvents(
    id: string,
    options: { limit?: number; beforeId?: number } = {},
  ): Promise<TokenEvent[]> {
    return this.store.listEvents(id, {
      limit: Math.min(Math.max(options.limit ?? 50, 1), 500),
      ...(options.beforeId === undefined ? {} : { beforeId: options.beforeId }),
    });
  }

  // Tokens ------------------------------------------------------------------------

  /**
   * A token valid for at least `minTtlSeconds` (PRODUCT.md point 1). The hot path is
   * a map lookup and a comparison: no database read while the cached token is good.
   */
  async getToken(id: string, options: GetTokenOptions = {}): Promise<AccessToken> {
    const minTtlSeconds = options.minTtlSeconds ?? this.#minTtlSeconds;
    const cached = this.#cache.get(id);
    if (
      cached !== undefined &&
      isUsable(cached.token, cached.integration, this.clock.now(), minTtlSeconds)
    ) {
      return cached.view;
    }
    const { entry } = await this.#flights.run(id, () =>
      this.#ensureToken(id, { trigger: "demand", minTtlSeconds }),
    );
    return entry.view;
  }

  /** Refreshes now, whatever the token's age (a person pressed "Refresh now"). */
  async refresh(id: string): Promise<ConnectionView> {
    const stored = await this.store.getConnection(id);
    if (stored === undefined) throw notFound(id);
    await this.#flights.run(`manual:${id}`, () =>
      this.#ensureToken(id, {
        trigger: "manual",
        minTtlSeconds: this.#minTtlSeconds,
        afterVersion: stored.state.tokenVersion,
      }),
    );
    return this.getConnection(id);
  }

  /**
   * RFC 7009 revocation of the refresh and access tokens at the server (when it has a
   * revocation endpoint), then the tokens are forgotten and the connection is `revoked`.
   */
  async revoke(id: string): Promise<ConnectionView> {
    const loaded = await this.#load(id);
    const leaseMs = loaded.resolved.timeoutMs * 2 + LEASE_MARGIN_MS;
    await this.#acquireLease(id, leaseMs, async () => false);
    const started = performance.now();
    try {
      const token = (await this.store.getConnection(id))?.token;
      const { resolved } = loaded;
      let httpStatus: number | null = null;
      if (token !== undefined && resolved.revocationUrl !== undefined) {
        // The refresh token first: revoking it usually takes its access tokens along.
        if (token.refreshToken !== undefined)
          await revokeToken(resolved, token.refreshToken, "refresh_token");
        await revokeToken(resolved, token.accessToken, "access_token");
        httpStatus = 200;
      }
      await this.store.updateState(
        id,
        {
          token: null,
          status: "revoked",
          expiresAt: null,
          nextRefreshAt: null,
          scope: null,
          failureCount: 0,
          lastError: null,
        },
        this.clock.now(),
      );
      this.#cache.delete(id);
      await this.#publish(`connection:${id}`);
      await this.#record(loaded, "manual", "revoke", started, { httpStatus });
    } catch (error) {
      const failure = asTokenwardenError(error);
      await this.#record(loaded, "manual", "revoke", started, { error: failure });
      throw failure;
    } finally {
      await this.store.releaseLease(id, this.holderId);
    }
    return this.getConnection(id);
  }

  /**
   * An API call with the token placed (`tokenPlacement`, `requestParams`), retried
   * once after a refresh when the answer says the token was refused (`retryOn`,
   * `expiredBodyPattern`) and the body can be sent again. Returns a WHATWG Response.
   */
  async fetch(id: string, path: string, init: FetchInit = {}): Promise<Response> {
    const body =
      init.body === undefined || init.body === null
        ? null
        : typeof init.body === "string" || init.body instanceof Uint8Array
          ? init.body
          : init.body instanceof URLSearchParams
            ? init.body.toString()
            : Readable.fromWeb(init.body as import("node:stream/web").ReadableStream<Uint8Array>);
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    if (init.body instanceof URLSearchParams && headers["content-type"] === undefined) {
      headers["content-type"] = "application/x-www-form-urlencoded;charset=UTF-8";
    }
    const res = await this.forward(id, { method: init.method ?? "GET", path, headers, body });
    const empty =
      res.status === 204 || res.status === 205 || res.status === 304 || init.method === "HEAD";
    const responseHeaders = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      if (Array.isArray(value)) for (const v of value) responseHeaders.append(name, v);
      else if (value !== undefined) responseHeaders.set(name, value);
    }
    if (empty) res.body.resume();
    return new Response(empty ? null : (Readable.toWeb(res.body) as ReadableStream<Uint8Array>), {
      status: res.status,
      headers: responseHeaders,
    });
  }

  /** The streaming form of `fetch`, for the service's proxy. */
  async forward(id: string, request: ApiRequest): Promise<ApiResponse> {
    await this.getToken(id);
    const entry = this.#cache.get(id) as CacheEntry;
    return callApi(entry.resolved, entry.token, request, async (rejected) => {
      const renewed = await this.#flights.run(`retry:${id}`, () =>
        this.#ensureToken(id, {
          trigger: "retry",
          minTtlSeconds: this.#minTtlSeconds,
          rejectedAccessToken: rejected.accessToken,
        }),
      );
      return renewed.entry.token;
    });
  }

  // Authorization code ------------------------------------------------------------

  /**
   * Starts the authorization code grant: a fresh `state` bound to this connection and
   * a PKCE verifier, both kept server-side until the callback, for a short while.
   */
  async startAuthorization(
    id: string,
    options: { redirectUri: string },
  ): Promise<{ url: string; state: string; expiresAt: string }> {
    const loaded = await this.#load(id);
    if (loaded.integration.grantType !== "authorization_code") {
      throw invalidConfig(
        "grantType",
        `integration ${loaded.integration.key} does not use authorization_code`,
      );
    }
    const request = buildAuthorizationRequest(loaded.resolved, {
      redirectUri: options.redirectUri,
    });
    const expiresAt = this.clock.now() + this.#authorizationTtlMs;
    await this.store.putPendingAuthorization({
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
   * Completes it from the redirect's query. A state that is unknown, expired or
   * already used is refused before anything else is read.
   */
  async completeAuthorization(query: URLSearchParams): Promise<ConnectionView> {
    const state = query.get("state");
    if (state === null || state === "")
      throw invalidConfig("state", "is missing from the callback");
    const pending = await this.store.takePendingAuthorization(state, this.clock.now());
    if (pending === undefined) {
      throw new TokenwardenError(
        "not_found",
        "this authorization is unknown, expired or already completed: start it again",
        { field: "state" },
      );
    }
    const loaded = await this.#load(pending.connectionId);
    const started = performance.now();
    try {
      const { code } = readAuthorizationResponse(query, state);
      const token = await exchangeAuthorizationCode(
        loaded.resolved,
        { code, redirectUri: pending.redirectUri, codeVerifier: pending.codeVerifier },
        { clock: this.clock },
      );
      await this.#storeToken(loaded, token, "authorize", "authorize", started);
    } catch (error) {
      const failure = asTokenwardenError(error);
      await this.#record(loaded, "authorize", "authorize", started, { error: failure });
      if (failure.oauthError !== "access_denied") {
        await this.store.updateState(
          loaded.stored.connection.id,
          { lastError: summarize(failure, this.clock.now()) },
          this.clock.now(),
        );
      }
      throw failure;
    }
    return this.getConnection(pending.connectionId);
  }

  // Lifecycle ---------------------------------------------------------------------

  /** Stops the scheduler, lets refreshes in flight finish, then closes the store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#scheduler?.stop();
    await this.#flights.drain();
    await this.#unsubscribe?.();
    if (this.#ownsStore) await this.store.close();
    await closeDispatchers();
  }

  // Internals ---------------------------------------------------------------------

  /** Tells the other processes to drop what they cached about `topic`. */
  async #publish(topic: `connection:${string}` | `integration:${string}`): Promise<void> {
    try {
      await this.store.publishChange(`${this.holderId}|${topic}`);
    } catch {
      // Best effort: other processes' caches still end at the token's expiry.
    }
  }

  #onChange(message: string): void {
    const separator = message.indexOf("|");
    if (message.slice(0, separator) === this.holderId) return;
    const topic = message.slice(separator + 1);
    if (topic.startsWith("connection:")) {
      this.#cache.delete(topic.slice("connection:".length));
    } else if (topic.startsWith("integration:")) {
      const key = topic.slice("integration:".length);
      for (const [id, entry] of this.#cache)
        if (entry.integration.key === key) this.#cache.delete(id);
    }
  }

  async #load(id: string): Promise<Loaded> {
    const stored = await this.store.getConnection(id);
    if (stored === undefined) throw notFound(id);
    const storedIntegration = await this.store.getIntegration(stored.connection.integration);
    if (storedIntegration === undefined) {
      throw new TokenwardenError(
        "not_found",
        `integration ${stored.connection.integration} does not exist`,
      );
    }
    const integration = storedIntegration.integration;
    return { stored, integration, resolved: resolveIntegration(integration, stored.connection) };
  }

  /**
   * The heart of it: decide from what is stored, and renew only while holding the
   * connection's lease. A process that finds the lease taken waits for the holder's
   * token (polling the token version) or for the lease to lapse, then decides again.
   */
  async #ensureToken(id: string, request: RenewRequest): Promise<Renewal> {
    let loaded = await this.#load(id);
    const leaseMs = loaded.resolved.timeoutMs + LEASE_MARGIN_MS;
    for (;;) {
      const decision = this.#decide(loaded, request);
      if (decision.kind === "use")
        return { entry: this.#remember(loaded, decision.token), renewed: false };
      if (decision.kind === "fail") throw decision.error;
      const seen = loaded.stored.state;
      const outcome = await this.#acquireLease(id, leaseMs, async () => {
        const now = await this.store.readTokenVersion(id);
        return (
          now === undefined || now.tokenVersion !== seen.tokenVersion || now.status !== seen.status
        );
      });
      if (outcome === "changed") {
        loaded = await this.#load(id);
        continue;
      }
      try {
        // Re-read under the lease: another process may have finished just before.
        const fresh = await this.#load(id);
        if (
          fresh.stored.state.tokenVersion !== seen.tokenVersion ||
          fresh.stored.state.status !== seen.status
        ) {
          loaded = fresh;
          if (this.#decide(loaded, request).kind !== "renew") continue;
        }
        return { entry: await this.#attempt(fresh, request.trigger), renewed: true };
      } finally {
        await this.store.releaseLease(id, this.holderId);
      }
    }
  }

  /** Claims the lease, or waits until `changed()` says waiting is moot. */
  async #acquireLease(
    id: string,
    leaseMs: number,
    changed: () => Promise<boolean>,
  ): Promise<"claimed" | "changed"> {
    // A holder that died loses its claim after leaseMs; waiting longer than a few
    // leases means something else is wrong.
    const deadline = performance.now() + leaseMs * 3;
    let poll = WAIT_POLL_MS.first;
    for (;;) {
      const now = this.clock.now();
      if (await this.store.tryClaimLease(id, this.holderId, now + leaseMs, now)) return "claimed";
      await sleep(poll);
      poll = Math.min(poll * 2, WAIT_POLL_MS.max);
      if (await changed()) return "changed";
      if (performance.now() > deadline) {
        throw new TokenwardenError(
          "timeout",
          `gave up waiting for another process to refresh connection ${id}`,
        );
      }
    }
  }

  #decide(loaded: Loaded, request: RenewRequest): Decision {
    const { stored, integration } = loaded;
    const { token, state } = stored;
    const now = this.clock.now();
    const usable = token !== undefined && isUsable(token, integration, now, request.minTtlSeconds);
    switch (request.trigger) {
      case "manual":
        if (
          token !== undefined &&
          request.afterVersion !== undefined &&
          state.tokenVersion > request.afterVersion
        ) {
          return { kind: "use", token };
        }
        break;
      case "retry":
        if (usable && token.accessToken !== request.rejectedAccessToken)
          return { kind: "use", token };
        break;
      case "schedule":
        if (usable && !isInRefreshWindow(token, integration, now)) return { kind: "use", token };
        break;
      default:
        if (usable) return { kind: "use", token };
    }
    return this.#gate(loaded, request, usable);
  }

  /** A renewal is wanted: is one possible, or is the answer an error? */
  #gate(loaded: Loaded, request: RenewRequest, usable: boolean): Decision {
    const { stored, integration } = loaded;
    const { token, state, connection } = stored;
    const unattendedGrant =
      integration.grantType === "client_credentials" || integration.grantType === "password";
    if (integration.session === "none" && token !== undefined) return { kind: "use", token };
    if (state.status === "pending_authorization" && token === undefined) {
      return fail(
        "pending_authorization",
        `connection ${connection.id} has not been authorized yet`,
      );
    }
    if (state.status === "revoked" && !unattendedGrant) {
      return fail("needs_reauth", `connection ${connection.id} was revoked; authorize it again`);
    }
    if (state.status === "needs_reauth" && request.trigger !== "manual") {
      if (usable) return { kind: "use", token: token as TokenSet };
      return fail(
        "needs_reauth",
        `connection ${connection.id} needs to be authorized again${state.lastError === null ? "" : `: ${state.lastError.message}`}`,
      );
    }
    const renewable = canRenewUnattended(integration.grantType, token, {
      session: integration.session,
      hasRefreshHook: integration.refreshHook !== undefined,
    });
    if (!renewable) {
      if (usable) return { kind: "use", token: token as TokenSet };
      return fail(
        "needs_reauth",
        `connection ${connection.id} has no refresh token; authorize it again`,
      );
    }
    const inBackoff =
      state.status === "error" &&
      state.nextRefreshAt !== null &&
      state.nextRefreshAt > this.clock.now();
    if (request.trigger === "demand" && inBackoff && state.lastError !== null) {
      if (usable) return { kind: "use", token: token as TokenSet };
      const retryAt = new Date(state.nextRefreshAt as number).toISOString();
      return {
        kind: "fail",
        error: new TokenwardenError(
          state.lastError.code as TokenwardenError["code"],
          `${state.lastError.message} (next attempt at ${retryAt})`,
          {
            ...(state.lastError.oauthError === undefined
              ? {}
              : { oauthError: state.lastError.oauthError }),
            ...(state.lastError.status === undefined ? {} : { status: state.lastError.status }),
          },
        ),
      };
    }
    return { kind: "renew" };
  }

  /** One attempt at the server (or the hook), recorded and written, success or not. */
  async #attempt(loaded: Loaded, trigger: EventTrigger): Promise<CacheEntry> {
    const { stored, integration, resolved } = loaded;
    const { token, connection } = stored;
    const options = { clock: this.clock };
    let action: EventAction = "obtain";
    const started = performance.now();
    try {
      let next: TokenSet;
      if (integration.refreshHook !== undefined) {
        action = "hook";
        next = await runRefreshHook(
          resolved,
          {
            clientId: resolved.clientId,
            clientSecret: resolved.clientSecret,
            refreshToken: token?.refreshToken ?? connection.refreshToken,
            accessToken: token?.accessToken,
            tokenUrl: resolved.tokenUrl,
            scope:
              token?.scope ??
              (resolved.scopes.length > 0
                ? resolved.scopes.join(resolved.scopeSeparator)
                : undefined),
            parameters: connection.parameters,
          },
          () => this.clock.now(),
        );
      } else if (token?.refreshToken !== undefined) {
        action = "refresh";
        try {
          next = await refreshAccessToken(resolved, token.refreshToken, options);
        } catch (error) {
          // A password or client credentials grant can start over where a refresh
          // token has died; only the others need a person.
          const grantAgain =
            integration.grantType === "client_credentials" || integration.grantType === "password";
          if (!grantAgain || classifyFailure(asTokenwardenError(error)) !== "reauth") throw error;
          await this.#record(loaded, trigger, action, started, {
            error: asTokenwardenError(error),
          });
          action = "obtain";
          next = await this.#grant(loaded);
        }
      } else {
        next = await this.#grant(loaded);
        if (integration.grantType === "refresh_token") action = "refresh";
      }
      next = carryRefreshToken(
        next,
        token?.refreshToken ??
          (integration.grantType === "refresh_token" ? connection.refreshToken : undefined),
      );
      return await this.#storeToken(loaded, next, trigger, action, started);
    } catch (error) {
      const failure = asTokenwardenError(error);
      await this.#recordFailure(loaded, failure, trigger, action, started);
      throw failure;
    }
  }

  /** A grant that needs no previous token. */
  async #grant(loaded: Loaded): Promise<TokenSet> {
    const { integration, resolved, stored } = loaded;
    const { connection } = stored;
    const options = { clock: this.clock };
    switch (integration.grantType) {
      case "client_credentials":
        return requestClientCredentialsGrant(resolved, options);
      case "password":
        return requestPasswordGrant(
          resolved,
          { username: connection.username as string, password: connection.password as string },
          options,
        );
      case "refresh_token":
        return refreshAccessToken(resolved, connection.refreshToken as string, options);
      case "authorization_code":
        throw new TokenwardenError(
          "needs_reauth",
          `connection ${connection.id} has no refresh token; authorize it again`,
        );
    }
  }

  /** Writes a new token with its state in one statement, records it, caches it. */
  async #storeToken(
    loaded: Loaded,
    token: TokenSet,
    trigger: EventTrigger,
    action: EventAction,
    started: number,
  ): Promise<CacheEntry> {
    const now = this.clock.now();
    const id = loaded.stored.connection.id;
    const tokenVersion = await this.store.updateState(
      id,
      {
        token,
        status: "active",
        expiresAt: token.expiresAt,
        scope: token.scope ?? null,
        lastRefreshAt: now,
        failureCount: 0,
        lastError: null,
        nextRefreshAt: this.#nextRefreshAt(loaded.integration, token, now),
      },
      now,
    );
    await this.#publish(`connection:${id}`);
    await this.#record(loaded, trigger, action, started, { httpStatus: token.httpStatus ?? null });
    const updated: Loaded = {
      ...loaded,
      stored: {
        ...loaded.stored,
        token,
        state: { ...loaded.stored.state, tokenVersion, status: "active" },
      },
    };
    return this.#remember(updated, token);
  }

  async #recordFailure(
    loaded: Loaded,
    error: TokenwardenError,
    trigger: EventTrigger,
    action: EventAction,
    started: number,
  ): Promise<void> {
    const now = this.clock.now();
    const { state, connection } = loaded.stored;
    const failureCount = state.failureCount + 1;
    const lastError = summarize(error, now);
    let patch: StatePatch;
    switch (classifyFailure(error)) {
      case "reauth":
        patch = { status: "needs_reauth", nextRefreshAt: null, failureCount, lastError };
        break;
      case "config":
        patch = { status: "error", nextRefreshAt: null, failureCount, lastError };
        break;
      default: {
        const wait = Math.max(
          backoffMs(failureCount - 1, { random: this.#random }),
          (error.retryAfterSeconds ?? 0) * 1000,
        );
        patch = { status: "error", nextRefreshAt: now + wait, failureCount, lastError };
      }
    }
    try {
      await this.store.updateState(connection.id, patch, now);
    } finally {
      await this.#record(loaded, trigger, action, started, { error });
    }
  }

  /** When the scheduler should look at this token next: in its window, with jitter. */
  #nextRefreshAt(integration: Integration, token: TokenSet, now: number): number | null {
    const renewable = canRenewUnattended(integration.grantType, token, {
      session: integration.session,
      hasRefreshHook: integration.refreshHook !== undefined,
    });
    const opensAt = refreshWindowOpensAt(token, integration);
    if (!renewable || opensAt === null) return null;
    // Spread over the first tenth of the window: many tokens issued together do
    // not all come due in the same tick, and each still refreshes well before expiry.
    const jitter = Math.floor(this.#random() * refreshLeadMs(token, integration) * 0.1);
    return Math.max(now, opensAt + jitter);
  }

  #remember(loaded: Loaded, token: TokenSet): CacheEntry {
    const entry: CacheEntry = {
      token,
      integration: loaded.integration,
      resolved: loaded.resolved,
      view: accessTokenView(token, loaded.resolved.tokenPlacement),
    };
    this.#cache.set(loaded.stored.connection.id, entry);
    return entry;
  }

  /** The scheduler's entry point: renew a checked-out connection, and put it back in its slot. */
  async #renewScheduled(id: string): Promise<void> {
    if (this.#closed) return;
    const { entry, renewed } = await this.#flights.run(id, () =>
      this.#ensureToken(id, { trigger: "schedule", minTtlSeconds: this.#minTtlSeconds }),
    );
    if (!renewed) {
      // Nothing was due after all (another process refreshed it): back to its slot.
      const now = this.clock.now();
      await this.store.updateState(
        id,
        { nextRefreshAt: this.#nextRefreshAt(entry.integration, entry.token, now) },
        now,
      );
    }
  }

  async #record(
    loaded: Loaded,
    trigger: EventTrigger,
    action: EventAction,
    started: number,
    result: { error?: TokenwardenError; httpStatus?: number | null },
  ): Promise<void> {
    const error = result.error;
    const event = {
      connectionId: loaded.stored.connection.id,
      integration: loaded.integration.key,
      at: this.clock.now(),
      trigger,
      action,
      outcome: error === undefined ? ("success" as const) : ("failure" as const),
      httpStatus: error?.status ?? result.httpStatus ?? null,
      errorCode: error?.code ?? null,
      errorDescription:
        error === undefined
          ? null
          : error.oauthError === undefined
            ? error.message
            : `${error.oauthError}${error.oauthErrorDescription === undefined ? "" : `: ${error.oauthErrorDescription}`}`,
      durationMs: performance.now() - started,
    };
    let recorded: TokenEvent;
    try {
      recorded = await this.store.appendEvent(event);
    } catch {
      // The store being down must not hide the attempt from listeners.
      recorded = {
        ...event,
        id: 0,
        at: new Date(event.at).toISOString(),
        durationMs: Math.round(event.durationMs),
      };
    }
    this.emit("event", recorded);
  }
}

function fail(code: TokenwardenError["code"], message: string): Decision {
  return { kind: "fail", error: new TokenwardenError(code, message) };
}

function notFound(id: string): TokenwardenError {
  return new TokenwardenError("not_found", `connection ${id} does not exist`);
}

export type { ConnectionStatus };
