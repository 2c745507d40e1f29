import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { Readable } from "node:stream";
import { type Clock, systemClock } from "../core/clock.js";
import type { ConnectionStatus } from "../core/connection.js";
import { invalidConfig, TokenwardenError } from "../core/errors.js";
import type { TokenEvent } from "../core/events.js";
import { asTokenwardenError, summarize } from "../core/failure.js";
import type { Integration } from "../core/integration.js";
import { buildAuthorizationRequest, readAuthorizationResponse } from "../oauth/authorization.js";
import { closeDispatchers } from "../oauth/http.js";
import { exchangeAuthorizationCode } from "../oauth/token-endpoint.js";
import { type OpenStoreOptions, openStore } from "../store/open.js";
import type { RotationReport } from "../store/rotation.js";
import type { ConnectionFilter, Store } from "../store/store.js";
import { type ApiRequest, type ApiResponse, callApi } from "./api-call.js";
import { ApiKeys } from "./api-keys.js";
import { type CatalogueChanges, CatalogueWriter, type PutIntegrationOptions } from "./catalogue.js";
import {
  type CatalogueDocument,
  type CatalogueImportReport,
  importCatalogue,
  validateCatalogueDocument,
} from "./catalogue-import.js";
import { EventLog } from "./event-log.js";
import { HostLimit } from "./host-limit.js";
import { withLease } from "./lease.js";
import { connectionNotFound, loadConnection, Renewer } from "./renewer.js";
import { Scheduler, type SchedulerOptions } from "./scheduler.js";
import { type ConnectionScope, ScopeCache } from "./scope-cache.js";
import { type CacheEntry, TokenSource } from "./token-source.js";
import {
  type AccessToken,
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
  /**
   * Renewals at once per token endpoint host (default 64), whatever starts them: a
   * storm of expiries does not flood one provider.
   */
  tokenEndpointConcurrency?: number;
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

/** Something a person should know that is not an attempt (events are attempts). */
export interface TokenwardenWarning {
  code: "unusable_pattern";
  integration: string;
  message: string;
}

const DEFAULT_TOKEN_ENDPOINT_CONCURRENCY = 64;

/** Extra time on top of `timeoutMs` before a revoke's lease lapses (two requests). */
const REVOKE_LEASE_MARGIN_MS = 2000;

/**
 * The broker: keeps each connection's token valid, once, across every process sharing
 * the store. Library users hold one of these; the service and the CLI are thin
 * adapters over it.
 */
export class Tokenwarden extends EventEmitter<{
  event: [TokenEvent];
  warning: [TokenwardenWarning];
}> {
  readonly #store: Store;
  /** The service's API keys: create, list, delete, and the ring that checks them. */
  readonly apiKeys: ApiKeys;
  readonly clock: Clock;
  readonly holderId: string;
  readonly #ownsStore: boolean;
  readonly #random: () => number;
  readonly #minTtlSeconds: number;
  readonly #authorizationTtlMs: number;
  readonly #events: EventLog;
  readonly #renewer: Renewer;
  readonly #tokens: TokenSource;
  readonly #scheduler: Scheduler | undefined;
  /** Which integration and environment each connection is in, for API key limits. */
  readonly #scopes = new ScopeCache(async (id) => {
    const stored = await this.#store.getConnection(id);
    return stored === undefined
      ? undefined
      : { integration: stored.connection.integration, environment: stored.connection.environment };
  });
  /** Warnings already given, so each is said once per process. */
  readonly #warned = new Set<string>();
  #closed = false;
  #unsubscribe: (() => Promise<void>) | undefined;

  static async open(options: TokenwardenOptions = {}): Promise<Tokenwarden> {
    const store = options.store ?? (await openStore(options));
    const tw = new Tokenwarden(store, options, options.store === undefined);
    tw.#unsubscribe = await store.subscribeChanges(
      (message) => tw.#onChange(message),
      () => tw.#onResubscribed(),
    );
    return tw;
  }

  private constructor(store: Store, options: TokenwardenOptions, ownsStore: boolean) {
    super();
    this.#store = store;
    this.apiKeys = new ApiKeys(store);
    this.#ownsStore = ownsStore;
    this.clock = options.clock ?? systemClock;
    this.holderId =
      options.holderId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
    this.#random = options.random ?? Math.random;
    this.#minTtlSeconds = options.minTtlSeconds ?? 10;
    this.#authorizationTtlMs = options.authorizationTtlMs ?? 10 * 60_000;
    this.#events = new EventLog(store, this.clock, (event) => this.emit("event", event));
    const publish = (id: string) => this.#publish(`connection:${id}`);
    this.#renewer = new Renewer({
      store,
      clock: this.clock,
      random: this.#random,
      events: this.#events,
      publish,
      keepUnwritten: (id, patch, version) => this.#tokens.keepUnwritten(id, patch, version),
    });
    this.#tokens = new TokenSource({
      store,
      clock: this.clock,
      holderId: this.holderId,
      random: this.#random,
      renewer: this.#renewer,
      hostLimit: new HostLimit(
        options.tokenEndpointConcurrency ?? DEFAULT_TOKEN_ENDPOINT_CONCURRENCY,
      ),
      publish,
    });
    if (options.scheduler !== false) {
      const schedulerOptions = options.scheduler === true ? {} : (options.scheduler ?? {});
      this.#scheduler = new Scheduler(
        store,
        this.clock,
        (id) => this.#tokens.renewDue(id, this.#minTtlSeconds),
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
    const stored = await this.#store.getIntegration(key);
    if (stored === undefined)
      throw new TokenwardenError("not_found", `integration ${key} does not exist`);
    return integrationView(stored);
  }

  async listIntegrations(): Promise<IntegrationView[]> {
    return (await this.#store.listIntegrations()).map(integrationView);
  }

  async deleteIntegration(key: string): Promise<void> {
    if (!(await this.#store.deleteIntegration(key))) {
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
    const result = await this.#store.transaction(async (store) => {
      const catalogue = new CatalogueWriter(store, this.clock);
      changes = catalogue.changes;
      return fn(catalogue);
    });
    for (const id of changes?.connections ?? []) {
      this.#tokens.forget(id);
      this.#scopes.forget(id);
      await this.#publish(`connection:${id}`);
    }
    for (const key of changes?.integrations ?? []) {
      this.#tokens.forgetIntegration(key);
      await this.#publish(`integration:${key}`);
    }
    return result;
  }

  /**
   * A declarative file's entries (config/declarative.ts), each validated first, then
   * all written in one transaction: all of them land or none.
   */
  async applyDeclarative(
    document: CatalogueDocument,
    options: Pick<PutIntegrationOptions, "moduleHooks"> = {},
  ): Promise<CatalogueImportReport> {
    validateCatalogueDocument(document);
    return this.writeCatalogue((catalogue) => importCatalogue(catalogue, document, options));
  }

  /** The integration, or `undefined` when there is none of that key. */
  async findIntegration(key: string): Promise<IntegrationView | undefined> {
    const stored = await this.#store.getIntegration(key);
    return stored === undefined ? undefined : integrationView(stored);
  }

  /** The connection, or `undefined` when there is none of that id. */
  async findConnection(id: string): Promise<ConnectionView | undefined> {
    const stored = await this.#store.getConnection(id);
    return stored === undefined ? undefined : connectionView(stored);
  }

  async getConnection(id: string): Promise<ConnectionView> {
    const stored = await this.#store.getConnection(id);
    if (stored === undefined) throw connectionNotFound(id);
    return connectionView(stored);
  }

  async listConnections(filter: ConnectionFilter = {}): Promise<ConnectionView[]> {
    return (await this.#store.listConnections(filter)).map(connectionView);
  }

  async deleteConnection(id: string): Promise<void> {
    this.#tokens.forget(id);
    this.#scopes.forget(id);
    if (!(await this.#store.deleteConnection(id))) throw connectionNotFound(id);
    await this.#publish(`connection:${id}`);
  }

  /** The connection's integration and environment (for API key limits), cached. */
  async connectionScope(id: string): Promise<ConnectionScope> {
    const scope = await this.#scopes.get(id);
    if (scope === undefined) throw connectionNotFound(id);
    return scope;
  }

  async listEvents(
    id: string,
    options: { limit?: number; beforeId?: number } = {},
  ): Promise<TokenEvent[]> {
    return this.#store.listEvents(id, {
      limit: Math.min(Math.max(options.limit ?? 50, 1), 500),
      ...(options.beforeId === undefined ? {} : { beforeId: options.beforeId }),
    });
  }

  /** Every connection's events after `afterId`, oldest first (the live feed). */
  async eventsAfter(afterId: number, limit: number): Promise<TokenEvent[]> {
    return this.#store.listEventsAfter(afterId, Math.min(Math.max(limit, 1), 500));
  }

  /** The highest event id so far, 0 when there is none. */
  async lastEventId(): Promise<number> {
    return this.#store.lastEventId();
  }

  // Tokens ------------------------------------------------------------------------

  /**
   * A token valid for at least `minTtlSeconds`. The hot path is a map lookup and a
   * comparison: no database read while the cached token is good.
   */
  async getToken(id: string, options: GetTokenOptions = {}): Promise<AccessToken> {
    return (await this.#entry(id, options.minTtlSeconds ?? this.#minTtlSeconds)).view;
  }

  /** Refreshes now, whatever the token's age (a person pressed "Refresh now"). */
  async refresh(id: string): Promise<ConnectionView> {
    const stored = await this.#store.getConnection(id);
    if (stored === undefined) throw connectionNotFound(id);
    await this.#tokens.token(id, {
      trigger: "manual",
      minTtlSeconds: this.#minTtlSeconds,
      afterVersion: stored.state.tokenVersion,
    });
    return this.getConnection(id);
  }

  /**
   * RFC 7009 revocation at the server, then the tokens are forgotten. It waits for a
   * refresh in flight in this process, and holds the lease against the others.
   */
  async revoke(id: string): Promise<ConnectionView> {
    await this.#tokens.exclusive(id, async () => {
      const loaded = await loadConnection(this.#store, id);
      const leaseMs = loaded.resolved.timeoutMs * 2 + REVOKE_LEASE_MARGIN_MS;
      await withLease(
        { store: this.#store, clock: this.clock, holderId: this.holderId },
        id,
        leaseMs,
        async () => false,
        async () => {
          this.#tokens.forget(id);
          await this.#renewer.revoke(await loadConnection(this.#store, id));
        },
      );
      this.#tokens.forget(id);
    });
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
    const entry = await this.#entry(id, this.#minTtlSeconds);
    return callApi(
      entry.resolved,
      entry.token,
      request,
      async (rejected) => {
        const renewed = await this.#tokens.token(id, {
          trigger: "retry",
          minTtlSeconds: this.#minTtlSeconds,
          rejectedAccessToken: rejected.accessToken,
        });
        return renewed.token;
      },
      { onUnusablePattern: (reason) => this.#unusablePattern(entry.integration, reason) },
    );
  }

  /** A stored pattern from an older version that RE2 refuses: never run; said once. */
  #unusablePattern(integration: Integration, reason: string): void {
    const seen = `pattern|${integration.key}|${integration.expiredBodyPattern}`;
    if (this.#warned.has(seen)) return;
    this.#warned.add(seen);
    this.emit("warning", {
      code: "unusable_pattern",
      integration: integration.key,
      message: `integration ${integration.key}: expiredBodyPattern is not run (RE2 refuses it: ${reason}); it counts as no match until it is rewritten`,
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
    const loaded = await loadConnection(this.#store, id);
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
    await this.#store.putPendingAuthorization({
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
    const pending = await this.#store.takePendingAuthorization(state, this.clock.now());
    if (pending === undefined) {
      throw new TokenwardenError(
        "not_found",
        "this authorization is unknown, expired or already completed: start it again",
        { field: "state" },
      );
    }
    const loaded = await loadConnection(this.#store, pending.connectionId);
    const started = performance.now();
    try {
      const { code } = readAuthorizationResponse(query, state);
      const token = await exchangeAuthorizationCode(
        loaded.resolved,
        { code, redirectUri: pending.redirectUri, codeVerifier: pending.codeVerifier },
        { clock: this.clock },
      );
      await this.#tokens.exclusive(loaded.stored.connection.id, async () => {
        // The authorization replaces whatever token the connection held.
        const current = await loadConnection(this.#store, loaded.stored.connection.id);
        const after = await this.#renewer.store(current, token, {
          trigger: "authorize",
          action: "authorize",
          started,
        });
        if (after.stored.token !== undefined) this.#tokens.remember(after, after.stored.token);
      });
    } catch (error) {
      const failure = asTokenwardenError(error);
      await this.#events.record(
        { connectionId: loaded.stored.connection.id, integration: loaded.integration.key },
        "authorize",
        "authorize",
        started,
        { error: failure },
      );
      if (failure.oauthError !== "access_denied") {
        await this.#store.updateState(
          loaded.stored.connection.id,
          { lastError: summarize(failure, this.clock.now()) },
          this.clock.now(),
        );
      }
      throw failure;
    }
    return this.getConnection(pending.connectionId);
  }

  // Operations --------------------------------------------------------------------

  /** Whether the database answers and every migration has run (`/readyz`). */
  async ready(): Promise<{ ready: boolean; database: Store["dialect"] }> {
    return { ready: await this.#store.ping(), database: this.#store.dialect };
  }

  /** How many connections are in each status (metrics). */
  async countConnectionsByStatus(): Promise<Partial<Record<ConnectionStatus, number>>> {
    return this.#store.countConnectionsByStatus();
  }

  /**
   * Re-seals every stored secret under the current master key, in one transaction
   * (`tokenwarden key rotate`); the old keys must be among `previousSecretKeys`.
   */
  async rotateKeys(): Promise<RotationReport> {
    return this.#store.rotateKeys();
  }

  // Lifecycle ---------------------------------------------------------------------

  /** Stops the scheduler, lets refreshes in flight finish, then closes the store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#scheduler?.stop();
    await this.#tokens.close();
    await this.#unsubscribe?.();
    if (this.#ownsStore) await this.#store.close();
    await closeDispatchers();
  }

  // Internals ---------------------------------------------------------------------

  async #entry(id: string, minTtlSeconds: number): Promise<CacheEntry> {
    return (
      this.#tokens.cached(id, minTtlSeconds) ??
      (await this.#tokens.token(id, { trigger: "demand", minTtlSeconds }))
    );
  }

  /** Tells the other processes to drop what they cached about `topic`. */
  async #publish(topic: `connection:${string}` | `integration:${string}`): Promise<void> {
    try {
      await this.#store.publishChange(`${this.holderId}|${topic}`);
    } catch {
      // Best effort: other processes' caches still end at the token's expiry.
    }
  }

  #onChange(message: string): void {
    const separator = message.indexOf("|");
    if (message.slice(0, separator) === this.holderId) return;
    const topic = message.slice(separator + 1);
    if (topic.startsWith("connection:")) {
      this.#tokens.forget(topic.slice("connection:".length));
      this.#scopes.forget(topic.slice("connection:".length));
    } else if (topic.startsWith("integration:")) {
      this.#tokens.forgetIntegration(topic.slice("integration:".length));
    }
  }

  /** The change channel was down (the database went away): what it missed is unknown. */
  #onResubscribed(): void {
    this.#tokens.forgetAll();
    this.#scopes.forgetAll();
  }
}

export type { ConnectionStatus };
