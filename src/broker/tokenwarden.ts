/**
 * The broker's façade: `Tokenwarden.open` wires the parts (token path, catalogue,
 * flows, background work) over one store and one HTTP client, `close` stops them in
 * order, and every public method is a one-line delegate to the module that owns it.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { type Clock, systemClock } from "../core/clock.js";
import type { ConnectionStatus } from "../core/connection.js";
import type { TokenEvent } from "../core/events.js";
import type { ApiAnswer, ApiRequest, ApiResponse } from "../oauth/api-call.js";
import { DpopNonces } from "../oauth/dpop.js";
import { HttpClient } from "../oauth/http.js";
import type { PresetEntry } from "../presets/catalogue.js";
import { openStore } from "../store/open.js";
import type { RotationReport } from "../store/rotation.js";
import type { ConnectionFilter, Store } from "../store/store.js";
import { ApiCalls, type FetchInit, type TokenwardenWarning } from "./api-calls.js";
import { ApiKeys } from "./api-keys.js";
import { AuthorizationFlow } from "./authorization-flow.js";
import { BackgroundFailures } from "./background-failures.js";
import { BackgroundWork } from "./background-work.js";
import { CacheSync } from "./cache-sync.js";
import type { CatalogueWriter, PutIntegrationOptions } from "./catalogue.js";
import { CatalogueAdmin } from "./catalogue-admin.js";
import type { CatalogueDocument, CatalogueImportReport } from "./catalogue-import.js";
import { ConnectSessions } from "./connect-sessions.js";
import { ConnectionTokens } from "./connection-tokens.js";
import { type DeviceAuthorizationStarted, DeviceFlows } from "./device-flow.js";
import { EventLog } from "./event-log.js";
import { HostLimit } from "./host-limit.js";
import type { AuthorizationStartOptions } from "./mcp-servers.js";
import type { GetTokenOptions, TokenwardenOptions } from "./options.js";
import { ProtocolSupport } from "./protocol-support.js";
import { RateLimits } from "./rate-limit.js";
import { Renewer } from "./renewer.js";
import { type ConnectionScope, ScopeCache } from "./scope-cache.js";
import type { StatusChange } from "./status.js";
import { TokenSource } from "./token-source.js";
import type { AccessToken, ConnectionView, IntegrationView } from "./views.js";
import { WebhookAdmin } from "./webhooks/admin.js";

export type { FetchInit, GetTokenOptions, TokenwardenOptions, TokenwardenWarning };

const DEFAULT_TOKEN_ENDPOINT_CONCURRENCY = 64;

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
  readonly #protocol: ProtocolSupport;
  readonly #api: ApiCalls;
  readonly #authorizations: AuthorizationFlow;
  readonly #background: BackgroundWork;
  /** Lifecycle webhooks: endpoints and their deliveries (webhooks/). */
  readonly webhooks: WebhookAdmin;
  /** Connect sessions: links an end user opens to authorize (connect-sessions.ts). */
  readonly connectSessions: ConnectSessions;
  /** DPoP nonces the servers handed this process (RFC 9449 §8). */
  readonly #dpopNonces = new DpopNonces();
  readonly #deviceFlows: DeviceFlows;
  /** Which integration and environment each connection is in, for API key limits. */
  readonly #scopes: ScopeCache;
  readonly #caches: CacheSync;
  readonly #catalogue: CatalogueAdmin;
  readonly #connectionTokens: ConnectionTokens;
  readonly #failures: BackgroundFailures;
  #closed = false;

  static async open(options: TokenwardenOptions = {}): Promise<Tokenwarden> {
    const store = options.store ?? (await openStore(options));
    const tw = new Tokenwarden(store, options, options.store === undefined);
    await tw.#caches.subscribe();
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
    this.#scopes = ScopeCache.over(store);
    this.#events = new EventLog(store, this.clock, (event) => this.emit("event", event));
    this.#failures = new BackgroundFailures(this.#events, this.#scopes, (warning) =>
      this.emit("warning", warning),
    );
    this.#http = new HttpClient(options.http);
    this.#protocol = new ProtocolSupport({
      store,
      clock: this.clock,
      http: this.#http,
      holderId: this.holderId,
    });
    const publish = (id: string) => this.#caches.publish(`connection:${id}`);
    // What most parts take; each reads the fields its own context names.
    const shared = {
      store,
      clock: this.clock,
      holderId: this.holderId,
      random: this.#random,
      events: this.#events,
      http: this.#http,
      protocol: this.#protocol,
      dpopNonces: this.#dpopNonces,
    };
    this.#renewer = new Renewer({
      ...shared,
      publish,
      keepUnwritten: (id, patch, version) => this.#tokens.keepUnwritten(id, patch, version),
      onStatus: (change) => this.emit("status", change),
      subjectToken: async (subjectId) => (await this.getToken(subjectId)).accessToken,
    });
    this.#tokens = new TokenSource({
      ...shared,
      renewer: this.#renewer,
      hostLimit: new HostLimit(
        options.tokenEndpointConcurrency ?? DEFAULT_TOKEN_ENDPOINT_CONCURRENCY,
      ),
      publish,
      onBackgroundFailure: (id, error) => this.#failures.renewalFailed(id, error),
      tokenCacheSize: options.tokenCacheSize,
    });
    this.#caches = new CacheSync(store, this.holderId, {
      tokens: this.#tokens,
      scopes: this.#scopes,
      protocol: this.#protocol,
    });
    const tokenPath = { ...shared, renewer: this.#renewer, tokens: this.#tokens };
    this.#connectionTokens = new ConnectionTokens({
      ...tokenPath,
      minTtlSeconds: this.#minTtlSeconds,
      view: (id) => this.getConnection(id),
    });
    this.#deviceFlows = new DeviceFlows({ ...tokenPath, adopt: options.scheduler !== false });
    this.#api = new ApiCalls({
      ...tokenPath,
      minTtlSeconds: this.#minTtlSeconds,
      entry: (id, minTtlSeconds) => this.#connectionTokens.entry(id, minTtlSeconds),
      warn: (warning) => this.emit("warning", warning),
      rateLimits: new RateLimits(store, this.clock),
    });
    this.#authorizations = new AuthorizationFlow({
      ...tokenPath,
      ttlMs: options.authorizationTtlMs ?? 10 * 60_000,
    });
    this.#background = new BackgroundWork({
      ...shared,
      renewDue: (due) => this.#tokens.renewDue(due, this.#minTtlSeconds),
      failures: this.#failures,
      scheduler: options.scheduler,
      webhooks: options.webhooks,
    });
    this.#catalogue = new CatalogueAdmin({
      ...shared,
      caches: this.#caches,
      scopes: this.#scopes,
      onStatus: (change) => this.emit("status", change),
    });
    this.webhooks = new WebhookAdmin(store, this.clock);
    this.connectSessions = new ConnectSessions({
      ...shared,
      writeCatalogue: (fn) => this.writeCatalogue(fn),
      startAuthorization: (id, opts) => this.startAuthorization(id, opts),
      authorizeNow: (id) => this.authorizeNow(id),
    });
  }

  /** Delivers every webhook due now and waits for the attempts (tests, one-shot commands). */
  deliverWebhooks(): Promise<void> {
    return this.#background.deliverWebhooks();
  }

  /** The scheduler's last observed lag in ms (for metrics). */
  get schedulerLagMs(): number {
    return this.#background.schedulerLagMs;
  }

  /** Renewals the scheduler runs now, and the most it has run at once (for metrics). */
  get schedulerInFlight(): { now: number; peak: number } {
    return this.#background.schedulerInFlight;
  }

  // Catalogue (catalogue-admin.ts) --------------------------------------------------

  /**
   * Creates or replaces an integration (catalogue.ts): a secret left out keeps the
   * stored one, `null` removes it; a move to a new destination must carry the secrets.
   */
  putIntegration(input: unknown, options: PutIntegrationOptions = {}): Promise<IntegrationView> {
    return this.#catalogue.putIntegration(input, options);
  }

  getIntegration(key: string): Promise<IntegrationView> {
    return this.#catalogue.getIntegration(key);
  }

  listIntegrations(): Promise<IntegrationView[]> {
    return this.#catalogue.listIntegrations();
  }

  deleteIntegration(key: string): Promise<void> {
    return this.#catalogue.deleteIntegration(key);
  }

  /** The preset catalogue (presets/catalogue.json), as `GET /v1/presets` lists it. */
  listPresets(): PresetEntry[] {
    return this.#catalogue.listPresets();
  }

  /** Creates or replaces a connection (catalogue.ts), validated against its integration. */
  putConnection(input: unknown): Promise<ConnectionView> {
    return this.#catalogue.putConnection(input);
  }

  /**
   * Catalogue writes in one transaction (an import file): all of them land or none.
   * `fn` must go through the catalogue it is given (on SQLite all else waits for it).
   */
  writeCatalogue<T>(fn: (catalogue: CatalogueWriter) => Promise<T>): Promise<T> {
    return this.#catalogue.write(fn);
  }

  /** A declarative file's entries (config/declarative.ts), validated, in one transaction. */
  applyDeclarative(
    document: CatalogueDocument,
    options: Pick<PutIntegrationOptions, "moduleHooks"> = {},
  ): Promise<CatalogueImportReport> {
    return this.#catalogue.applyDeclarative(document, options);
  }

  /** The integration, or `undefined` when there is none of that key. */
  findIntegration(key: string): Promise<IntegrationView | undefined> {
    return this.#catalogue.findIntegration(key);
  }

  /** The connection, or `undefined` when there is none of that id. */
  findConnection(id: string): Promise<ConnectionView | undefined> {
    return this.#catalogue.findConnection(id);
  }

  getConnection(id: string): Promise<ConnectionView> {
    return this.#catalogue.getConnection(id);
  }

  listConnections(filter: ConnectionFilter = {}): Promise<ConnectionView[]> {
    return this.#catalogue.listConnections(filter);
  }

  deleteConnection(id: string): Promise<void> {
    return this.#catalogue.deleteConnection(id);
  }

  /** The connection's integration and environment (for API key limits), cached. */
  connectionScope(id: string): Promise<ConnectionScope> {
    return this.#catalogue.connectionScope(id);
  }

  // Events (event-log.ts) -------------------------------------------------------------

  /** A connection's events, newest first (event-log.ts: 50 by default, at most 500). */
  listEvents(
    id: string,
    options: { limit?: number; beforeId?: number } = {},
  ): Promise<TokenEvent[]> {
    return this.#events.list(id, options);
  }

  /** Every connection's events after `afterId`, oldest first (the live feed). */
  eventsAfter(afterId: number, limit: number): Promise<TokenEvent[]> {
    return this.#events.after(afterId, limit);
  }

  /** The highest event id so far, 0 when there is none. */
  lastEventId(): Promise<number> {
    return this.#events.lastId();
  }

  // Tokens ------------------------------------------------------------------------

  /**
   * A token valid for at least `minTtlSeconds`. The hot path is a map lookup and a
   * comparison: no database read while the cached token is good.
   */
  async getToken(id: string, options: GetTokenOptions = {}): Promise<AccessToken> {
    const minTtlSeconds = options.minTtlSeconds ?? this.#minTtlSeconds;
    return (await this.#connectionTokens.entry(id, minTtlSeconds)).view;
  }

  /**
   * `getToken` with the default `minTtlSeconds` when its answer is already in memory:
   * the cached token if it is good, with no promise; `undefined` when getting one
   * would need the database, a refresh, or an error (ask `getToken` then).
   */
  cachedToken(id: string): AccessToken | undefined {
    return this.#tokens.cached(id, this.#minTtlSeconds)?.view;
  }

  /** Refreshes now, whatever the token's age (a person pressed "Refresh now"). */
  refresh(id: string): Promise<ConnectionView> {
    return this.#connectionTokens.renewNow(id, "manual");
  }

  /**
   * A person's authorization without a redirect (a connect link's password form): a
   * new token now, whatever is held, announced as `connection.authorized`.
   */
  authorizeNow(id: string): Promise<ConnectionView> {
    return this.#connectionTokens.renewNow(id, "authorize");
  }

  /**
   * RFC 7009 revocation at the server, then the tokens are forgotten. It waits for a
   * refresh in flight in this process, and holds the lease against the others.
   */
  revoke(id: string): Promise<ConnectionView> {
    return this.#connectionTokens.revoke(id);
  }

  /**
   * An API call with the token placed, retried once after a refresh when the answer
   * says the token was refused (api-calls.ts). Returns a WHATWG Response.
   */
  fetch(id: string, path: string, init: FetchInit = {}): Promise<Response> {
    return this.#api.fetch(id, path, init);
  }

  /** The streaming form of `fetch`. */
  forward(id: string, request: ApiRequest): Promise<ApiResponse> {
    return this.#api.forward(id, request);
  }

  /**
   * `forward` as the service's proxy sends it on: a body that came whole with the
   * headers, or a small one of known length, comes as bytes (one write, no stream
   * between), any other as a stream.
   */
  forwardHeld(id: string, request: ApiRequest): Promise<ApiAnswer> {
    return this.#api.forwardHeld(id, request);
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

  /** RFC 8628: a user code for the person; polls in the background until they approve. */
  startDeviceAuthorization(id: string): Promise<DeviceAuthorizationStarted> {
    return this.#deviceFlows.start(id);
  }

  /** Resolves when `id`'s device flow (any process's, from the store) ended; rejects with why not. */
  async waitForDeviceAuthorization(id: string): Promise<ConnectionView> {
    await this.#deviceFlows.wait(id);
    return this.getConnection(id);
  }

  /**
   * Withdraws `id`'s pending device authorization: no process polls it again; waiters
   * are told (`conflict`). `not_found` when none is pending.
   */
  cancelDeviceAuthorization(id: string): Promise<void> {
    return this.#deviceFlows.cancel(id);
  }

  /** RFC 9449 §4: a DPoP proof for a call a workflow makes itself with the token. */
  dpopProof(id: string, request: { method: string; url: string }): Promise<{ proof: string }> {
    return this.#connectionTokens.dpopProof(id, request);
  }

  // Lifecycle ---------------------------------------------------------------------

  /**
   * Stops the scheduler, lets refreshes in flight finish, then closes the store and
   * this instance's connections (API calls in flight finish first).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#background.stopScheduler();
    await this.#deviceFlows.close();
    await this.#background.stopDeliveries();
    await this.#tokens.close();
    await this.#caches.close();
    if (this.#ownsStore) await this.#store.close();
    await this.#http.close();
  }
}

export type { ConnectionStatus };
