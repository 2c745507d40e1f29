import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { type Clock, systemClock } from "../core/clock.js";
import type { ConnectionStatus } from "../core/connection.js";
import { invalidConfig, TokenwardenError } from "../core/errors.js";
import type { TokenEvent } from "../core/events.js";
import { asTokenwardenError } from "../core/failure.js";
import { isHttpUrl } from "../core/integration.js";
import type { ApiRequest, ApiResponse } from "../oauth/api-call.js";
import { DpopNonces, dpopProof } from "../oauth/dpop.js";
import { HttpClient, type HttpClientOptions } from "../oauth/http.js";
import { PRESETS, type PresetEntry, presetEntry } from "../presets/catalogue.js";
import { type OpenStoreOptions, openStore } from "../store/open.js";
import type { RotationReport } from "../store/rotation.js";
import type { ConnectionFilter, Store } from "../store/store.js";
import { ApiCalls, type FetchInit, type TokenwardenWarning } from "./api-calls.js";
import { ApiKeys } from "./api-keys.js";
import { AuthorizationFlow } from "./authorization-flow.js";
import { type CatalogueChanges, CatalogueWriter, type PutIntegrationOptions } from "./catalogue.js";
import {
  type CatalogueDocument,
  type CatalogueImportReport,
  importCatalogue,
  validateCatalogueDocument,
} from "./catalogue-import.js";
import { ConnectSessions } from "./connect-sessions.js";
import { type DeviceAuthorizationStarted, DeviceFlows } from "./device-flow.js";
import { EventLog } from "./event-log.js";
import { HostLimit } from "./host-limit.js";
import { withLease } from "./lease.js";
import type { AuthorizationStartOptions } from "./mcp-servers.js";
import { ProtocolSupport } from "./protocol-support.js";
import { RateLimits } from "./rate-limit.js";
import { connectionNotFound, loadConnection, Renewer } from "./renewer.js";
import { Scheduler, type SchedulerOptions } from "./scheduler.js";
import { type ConnectionScope, ScopeCache } from "./scope-cache.js";
import type { StatusChange } from "./status.js";
import { type CacheEntry, TokenSource } from "./token-source.js";
import {
  type AccessToken,
  type ConnectionView,
  connectionView,
  type IntegrationView,
  integrationView,
} from "./views.js";
import { WebhookAdmin } from "./webhooks/admin.js";
import { Dispatcher, type DispatcherOptions } from "./webhooks/dispatcher.js";
import { deleteAnnounced } from "./webhooks/transitions.js";

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
  /** Limits of this instance's HTTP client (its own pools, closed with it). */
  http?: HttpClientOptions;
  /** `false`: this process delivers no webhooks (others sharing the store do). */
  webhooks?: boolean | DispatcherOptions;
}

export type { FetchInit, TokenwardenWarning };

export interface GetTokenOptions {
  /** The token must stay valid this long (capped at half its lifetime). Default 10. */
  minTtlSeconds?: number;
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
  status: [StatusChange];
}> {
  readonly #store: Store;
  /** The service's API keys: create, list, delete, and the ring that checks them. */
  readonly apiKeys: ApiKeys;
  readonly clock: Clock;
  readonly holderId: string;
  readonly #ownsStore: boolean;
  readonly #random: () => number;
  readonly #minTtlSeconds: number;
  readonly #events: EventLog;
  readonly #http: HttpClient;
  readonly #renewer: Renewer;
  readonly #tokens: TokenSource;
  readonly #scheduler: Scheduler | undefined;
  readonly #protocol: ProtocolSupport;
  readonly #api: ApiCalls;
  readonly #authorizations: AuthorizationFlow;
  readonly #dispatcher: Dispatcher | undefined;
  /** Lifecycle webhooks: endpoints and their deliveries (webhooks/). */
  readonly webhooks: WebhookAdmin;
  /** Connect sessions: links an end user opens to authorize (connect-sessions.ts). */
  readonly connectSessions: ConnectSessions;
  /** DPoP nonces the servers handed this process (RFC 9449 §8). */
  readonly #dpopNonces = new DpopNonces();
  readonly #deviceFlows: DeviceFlows;
  /** Which integration and environment each connection is in, for API key limits. */
  readonly #scopes = new ScopeCache(async (id) => {
    const stored = await this.#store.getConnection(id);
    return stored === undefined
      ? undefined
      : { integration: stored.connection.integration, environment: stored.connection.environment };
  });
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
    this.#events = new EventLog(store, this.clock, (event) => this.emit("event", event));
    this.#http = new HttpClient(options.http);
    this.#protocol = new ProtocolSupport(store, this.clock, this.#http);
    const publish = (id: string) => this.#publish(`connection:${id}`);
    this.#renewer = new Renewer({
      store,
      clock: this.clock,
      random: this.#random,
      events: this.#events,
      http: this.#http,
      publish,
      keepUnwritten: (id, patch, version) => this.#tokens.keepUnwritten(id, patch, version),
      onStatus: (change) => this.emit("status", change),
      subjectToken: async (subjectId) => (await this.getToken(subjectId)).accessToken,
      dpopNonces: this.#dpopNonces,
      protocol: this.#protocol,
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
      onBackgroundFailure: (id, error) => this.#backgroundFailure(id, error),
    });
    this.#deviceFlows = new DeviceFlows({
      store,
      clock: this.clock,
      http: this.#http,
      holderId: this.holderId,
      renewer: this.#renewer,
      tokens: this.#tokens,
      events: this.#events,
      dpopNonces: this.#dpopNonces,
    });
    this.#api = new ApiCalls({
      tokens: this.#tokens,
      http: this.#http,
      minTtlSeconds: this.#minTtlSeconds,
      entry: (id, minTtlSeconds) => this.#entry(id, minTtlSeconds),
      warn: (warning) => this.emit("warning", warning),
      rateLimits: new RateLimits(store, this.clock),
      dpopNonces: this.#dpopNonces,
    });
    this.#authorizations = new AuthorizationFlow({
      store,
      clock: this.clock,
      events: this.#events,
      renewer: this.#renewer,
      tokens: this.#tokens,
      protocol: this.#protocol,
      ttlMs: options.authorizationTtlMs ?? 10 * 60_000,
      dpopNonces: this.#dpopNonces,
    });
    if (options.scheduler !== false) {
      const schedulerOptions = options.scheduler === true ? {} : (options.scheduler ?? {});
      this.#scheduler = new Scheduler(
        store,
        this.clock,
        (id) =>
          this.#tokens
            .renewDue(id, this.#minTtlSeconds)
            .catch((error: unknown) => this.#backgroundFailure(id, error)),
        {
          onTickFailed: (error, failures) =>
            this.emit("warning", {
              code: "scheduler_failed",
              ...codeOf(error),
              message: `the scheduler could not look for due connections (${failures} in a row): ${asTokenwardenError(error).message}`,
            }),
          ...schedulerOptions,
        },
      );
      this.#scheduler.start();
    }
    this.webhooks = new WebhookAdmin(store, this.clock);
    this.connectSessions = new ConnectSessions({
      store,
      clock: this.clock,
      writeCatalogue: (fn) => this.writeCatalogue(fn),
      startAuthorization: (id, opts) => this.startAuthorization(id, opts),
      authorizeNow: (id) => this.authorizeNow(id),
    });
    if (options.webhooks !== false) {
      this.#dispatcher = new Dispatcher(
        store,
        this.clock,
        this.holderId,
        this.#random,
        options.webhooks === true ? {} : (options.webhooks ?? {}),
      );
      this.#dispatcher.start();
    }
  }

  /** Delivers every webhook due now and waits for the attempts (tests, one-shot commands). */
  async deliverWebhooks(): Promise<void> {
    if (this.#dispatcher !== undefined) return this.#dispatcher.drain();
    const once = new Dispatcher(this.#store, this.clock, this.holderId, this.#random);
    try {
      await once.drain();
    } finally {
      await once.stop();
    }
  }

  /** The scheduler's last observed lag in ms (for metrics). */
  get schedulerLagMs(): number {
    return this.#scheduler?.lastLagMs ?? 0;
  }

  /** Renewals the scheduler runs now, and the most it has run at once (for metrics). */
  get schedulerInFlight(): { now: number; peak: number } {
    return { now: this.#scheduler?.inFlight ?? 0, peak: this.#scheduler?.peakInFlight ?? 0 };
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

  /** The preset catalogue (presets/catalogue.json), as `GET /v1/presets` lists it. */
  listPresets(): PresetEntry[] {
    return PRESETS.map(presetEntry);
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
    for (const change of changes?.statuses ?? []) this.emit("status", change);
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
    if (!(await deleteAnnounced(this.#store, id, this.clock.now()))) throw connectionNotFound(id);
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
   * A person's authorization without a redirect (a connect link's password form): a
   * new token now, whatever is held, announced as `connection.authorized`.
   */
  async authorizeNow(id: string): Promise<ConnectionView> {
    const stored = await this.#store.getConnection(id);
    if (stored === undefined) throw connectionNotFound(id);
    await this.#tokens.token(id, {
      trigger: "authorize",
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
   * An API call with the token placed, retried once after a refresh when the answer
   * says the token was refused (api-calls.ts). Returns a WHATWG Response.
   */
  fetch(id: string, path: string, init: FetchInit = {}): Promise<Response> {
    return this.#api.fetch(id, path, init);
  }

  /** The streaming form of `fetch`, for the service's proxy. */
  forward(id: string, request: ApiRequest): Promise<ApiResponse> {
    return this.#api.forward(id, request);
  }

  /**
   * A renewal nobody waits for (the scheduler's, or one started in the background)
   * failed. An attempt's own failure is an event already; the others (the database
   * went away before the attempt) are told here, so none passes unsaid.
   */
  async #backgroundFailure(id: string, error: unknown): Promise<void> {
    if (this.#events.wasRecorded(error)) return;
    const scope = await this.#scopes.get(id).catch(() => undefined);
    this.emit("warning", {
      code: "renewal_failed",
      connectionId: id,
      ...(scope === undefined ? {} : { integration: scope.integration }),
      ...codeOf(error),
      message: `connection ${id}: a background renewal failed before reaching the token endpoint: ${asTokenwardenError(error).message}`,
    });
  }

  // Authorization code ------------------------------------------------------------

  /**
   * Starts the authorization code grant (authorization-flow.ts): the URL to open, with
   * a fresh `state` and PKCE, both kept server-side until the callback.
   */
  startAuthorization(
    id: string,
    options: AuthorizationStartOptions,
  ): Promise<{ url: string; state: string; expiresAt: string }> {
    return this.#authorizations.start(id, options);
  }

  /** Completes it from the redirect's query; an unknown, expired or used state is refused. */
  async completeAuthorization(query: URLSearchParams): Promise<ConnectionView> {
    return this.getConnection(await this.#authorizations.complete(query));
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

  // Device grant, DPoP (protocol breadth) --------------------------------------------

  /**
   * RFC 8628: asks the server for a user code and starts polling its token endpoint
   * in the background until the person approves (`waitForDeviceAuthorization`).
   */
  startDeviceAuthorization(id: string): Promise<DeviceAuthorizationStarted> {
    return this.#deviceFlows.start(id);
  }

  /** Resolves when this process's device flow for `id` authorized it; rejects with why not. */
  async waitForDeviceAuthorization(id: string): Promise<ConnectionView> {
    await this.#deviceFlows.wait(id);
    return this.getConnection(id);
  }

  /**
   * RFC 9449 §4: a DPoP proof for a call a workflow makes itself with this
   * connection's token (`ath` bound to the current token, the server's nonce if known).
   */
  async dpopProof(
    id: string,
    request: { method: string; url: string },
  ): Promise<{ proof: string }> {
    const entry = await this.#entry(id, this.#minTtlSeconds);
    const key = entry.token.dpopKey;
    if (entry.integration.dpop !== true || key === undefined)
      throw invalidConfig("dpop", `connection ${id} does not bind its tokens with DPoP`);
    if (!isHttpUrl(request.url)) throw invalidConfig("url", "must be an absolute http(s) URL");
    const url = new URL(request.url);
    const proof = await dpopProof(
      { key, nonces: this.#dpopNonces },
      { method: request.method, url, accessToken: entry.token.accessToken },
      Date.now(),
    );
    return { proof };
  }

  // Lifecycle ---------------------------------------------------------------------

  /**
   * Stops the scheduler, lets refreshes in flight finish, then closes the store and
   * this instance's connections (API calls in flight finish first).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#scheduler?.stop();
    await this.#deviceFlows.close();
    await this.#dispatcher?.stop();
    await this.#tokens.close();
    await this.#unsubscribe?.();
    if (this.#ownsStore) await this.#store.close();
    await this.#http.close();
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

function codeOf(error: unknown): { errorCode?: string } {
  return error instanceof TokenwardenError ? { errorCode: error.code } : {};
}
