/**
 * Where tokens come from (golang/oauth2's `ReuseTokenSource`, for many connections
 * and many processes): a cache that answers while its token is good, and otherwise
 * one flight per connection in this process, whatever started it (a caller, the
 * scheduler, a person, a refused API call), run under the connection's lease so that
 * one flight runs across every process. Each caller then checks the result against
 * its own request, and only asks again if it is not satisfied.
 */
import type { Clock } from "../core/clock.js";
import { decide, type TokenRequest } from "../core/decision.js";
import { TokenwardenError } from "../core/errors.js";
import { asTokenwardenError } from "../core/failure.js";
import { isInRefreshWindow, isUsable } from "../core/refresh-policy.js";
import { IntegrationResolver, type ResolvedIntegration } from "../core/resolve.js";
import { nextRefreshAt, type StatePatch } from "../core/state.js";
import type { TokenSet } from "../core/token-set.js";
import type { DueConnection, Store } from "../store/store.js";
import { type HostLimit, tokenEndpointHost } from "./host-limit.js";
import { withLease } from "./lease.js";
import { type HeldLease, LeaseBatches } from "./lease-batch.js";
import { connectionNotFound, type Loaded, loadConnection } from "./loaded.js";
import type { Renewer } from "./renewer.js";
import { KeyedMutex, SingleFlight } from "./single-flight.js";
import { type CacheEntry, TokenCache } from "./token-cache.js";
import { accessTokenView } from "./views.js";
import { WriteBehind } from "./write-behind.js";

export type { CacheEntry };

export interface TokenSourceContext {
  store: Store;
  clock: Clock;
  holderId: string;
  random: () => number;
  renewer: Renewer;
  /** Renewals at once per token endpoint host. */
  hostLimit: HostLimit;
  /** Tells the other processes that this connection changed. */
  publish(id: string): Promise<void>;
  /** A background renewal failed (the attempt's own failures are events already). */
  onBackgroundFailure?(id: string, error: unknown): void;
  /** The most tokens kept in memory (token-cache.ts; its default when left out). */
  tokenCacheSize?: number;
}

/** Extra time on top of `timeoutMs` before a refresh lease lapses. */
const LEASE_MARGIN_MS = 2000;
/** A caller unsatisfied after this many flights gives up (another holder keeps winning). */
const MAX_ROUNDS = 4;
/** A token in its refresh window starts at most one background renewal this often. */
const BACKGROUND_RENEW_EVERY_MS = 1000;
/** How long a token the database refused waits before the next write (grows to the cap). */
const UNWRITTEN_RETRY_MS = { first: 500, max: 30_000 };

interface Unwritten {
  patch: StatePatch;
  expectedVersion: number;
  retryMs: number;
  timer: NodeJS.Timeout;
}

export class TokenSource {
  readonly #ctx: TokenSourceContext;
  readonly #cache: TokenCache;
  readonly #flights = new SingleFlight<string, Loaded>();
  readonly #serial = new KeyedMutex<string>();
  readonly #unwritten = new Map<string, Unwritten>();
  readonly #resolver = new IntegrationResolver();
  readonly #hosts = new WeakMap<ResolvedIntegration, string>();
  #closed = false;

  readonly #leases: LeaseBatches;
  readonly #writes: WriteBehind;

  constructor(ctx: TokenSourceContext) {
    this.#ctx = ctx;
    this.#cache = new TokenCache(ctx.tokenCacheSize);
    this.#leases = new LeaseBatches(ctx);
    this.#writes = new WriteBehind(ctx.store, ctx.clock);
  }

  /** The hot path: a map lookup and a comparison, no database read. */
  cached(id: string, minTtlSeconds: number): CacheEntry | undefined {
    const entry = this.#cache.get(id);
    if (entry === undefined) return undefined;
    const now = this.#ctx.clock.now();
    if (!isUsable(entry.token, entry.integration, now, minTtlSeconds)) return undefined;
    if (
      isInRefreshWindow(entry.token, entry.integration, now) &&
      performance.now() - entry.renewStartedAt > BACKGROUND_RENEW_EVERY_MS
    ) {
      // Used inside its refresh window: the caller gets this token now, and the
      // decision (backoff, status) is taken again in the background.
      entry.renewStartedAt = performance.now();
      this.#renewInBackground(id);
    }
    return entry;
  }

  /** A token that satisfies `request`, renewing it if needed. */
  async token(id: string, request: TokenRequest): Promise<CacheEntry> {
    return (await this.#obtain(id, request)).entry;
  }

  /**
   * The scheduler's entry point: renew a checked-out connection, or put it back in its
   * slot. The check-out read the row; its lease is claimed with the others the tick
   * started and its write joins theirs (lease-batch.ts, write-behind.ts), so a storm of
   * expiries costs the database a few statements per batch, not several per renewal.
   */
  async renewDue(due: DueConnection, minTtlSeconds: number): Promise<void> {
    if (this.#closed) return;
    const request: TokenRequest = { trigger: "schedule", minTtlSeconds };
    const { id } = due;
    const claimed = this.#claimedLoad(due, request);
    if (claimed === undefined) return this.#renewDueAlone(id, minTtlSeconds);
    // Chained, not awaited (here and below): while its request is out, a renewal
    // keeps as few objects alive as it can, as hundreds are out at once.
    const flight = this.#flights.run(id, () =>
      this.#serial.run(id, () => this.#renewClaimed(id, claimed)),
    );
    return flight.then((after) => {
      // A token read in this process is kept current; one nobody reads here is not
      // cached (a storm renews a million connections, few of them read in any one
      // process), so a renewal builds no entry for it.
      if (!this.#cache.has(id)) return;
      const decision = decide(after.stored, after.integration, request, this.#ctx.clock.now());
      if (decision.kind === "use") this.#cache.update(id, cacheEntry(after, decision.token));
    });
  }

  /**
   * The checked-out row, when it can be renewed as read: it was read whole, is due,
   * and no flight of this process or unwritten token of it is in the way.
   */
  #claimedLoad(due: DueConnection, request: TokenRequest): Loaded | undefined {
    if (due.loaded === undefined || this.#flights.has(due.id) || this.#unwritten.has(due.id))
      return undefined;
    const { stored, integration } = due.loaded;
    try {
      const loaded = {
        stored,
        integration,
        resolved: this.#resolver.resolve(integration, stored.connection),
      };
      const decision = decide(stored, integration, request, this.#ctx.clock.now());
      return decision.kind === "renew" ? loaded : undefined;
    } catch {
      return undefined; // the one-by-one path reads it again and tells what is wrong
    }
  }

  /** Renews a checked-out connection under a lease claimed with its batch's. */
  async #renewClaimed(id: string, loaded: Loaded): Promise<Loaded> {
    const lease = await this.#leases.claim(id, loaded.resolved.timeoutMs + LEASE_MARGIN_MS);
    // Another holder has it: wait for that one as any flight does.
    if (lease === undefined) return this.#renewUnderLease(id, loaded, "schedule");
    let renewed: Promise<Loaded>;
    try {
      renewed = this.#renewLeased(id, loaded, lease);
    } catch (error) {
      renewed = Promise.reject(error);
    }
    return renewed.finally(() => lease.release());
  }

  /** The renewal itself, once its lease is held. */
  #renewLeased(id: string, loaded: Loaded, lease: HeldLease): Promise<Loaded> {
    const before = loaded.stored.state;
    const now = lease.current;
    if (now === undefined) throw connectionNotFound(id);
    // Renewed between the check-out and the claim: that token stands.
    if (now.tokenVersion !== before.tokenVersion || now.status !== before.status)
      return loadConnection(this.#ctx.store, id);
    // As the broker publishes a change (tokenwarden.ts): `<holder>|connection:<id>`.
    const batched = {
      writes: this.#writes,
      lease,
      topic: `${this.#ctx.holderId}|connection:${id}`,
    };
    return this.#ctx.hostLimit.run(this.#hostOf(loaded.resolved), () =>
      this.#ctx.renewer.attempt(loaded, "schedule", batched),
    );
  }

  /** A checked-out connection renewed on its own, as a caller's would be. */
  async #renewDueAlone(id: string, minTtlSeconds: number): Promise<void> {
    const { entry, renewed } = await this.#obtain(id, { trigger: "schedule", minTtlSeconds });
    if (renewed) return;
    // Nothing was due after all (another process renewed it): back to its slot.
    const stored = await this.#ctx.store.getConnection(id);
    if (stored === undefined) return;
    const now = this.#ctx.clock.now();
    const next = nextRefreshAt(
      entry.integration,
      stored.connection,
      entry.token,
      now,
      this.#ctx.random,
    );
    await this.#ctx.store.updateState(id, { nextRefreshAt: next }, now);
  }

  /** Runs `work` (a revoke) with no flight of this connection running in this process. */
  exclusive<T>(id: string, work: () => Promise<T>): Promise<T> {
    return this.#serial.run(id, work);
  }

  /** The token of a just-completed authorization, or of any other write, for the cache. */
  remember(loaded: Loaded, token: TokenSet): CacheEntry {
    const entry = cacheEntry(loaded, token);
    this.#cache.set(loaded.stored.connection.id, entry);
    return entry;
  }

  forget(id: string): void {
    this.#cache.delete(id);
  }

  forgetIntegration(key: string): void {
    this.#cache.deleteIntegration(key);
  }

  forgetAll(): void {
    this.#cache.clear();
  }

  /** A new token the database could not take: kept in memory, written when it can be. */
  keepUnwritten(id: string, patch: StatePatch, expectedVersion: number): void {
    clearTimeout(this.#unwritten.get(id)?.timer);
    const retryMs = UNWRITTEN_RETRY_MS.first;
    const timer = setTimeout(() => this.#retryUnwritten(id), retryMs);
    timer.unref();
    this.#unwritten.set(id, { patch, expectedVersion, retryMs, timer });
  }

  /** Lets flights finish and makes a last attempt at writing what is in memory. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#flights.drain();
    for (const id of [...this.#unwritten.keys()]) await this.#writeUnwritten(id, true);
  }

  async #obtain(
    id: string,
    request: TokenRequest,
  ): Promise<{ entry: CacheEntry; renewed: boolean }> {
    let loaded = await this.#load(id);
    let renewed = false;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const decision = decide(loaded.stored, loaded.integration, request, this.#ctx.clock.now());
      if (decision.kind === "use") {
        const entry = this.#keep(loaded, decision.token, request.trigger);
        if (decision.renewSoon) this.#renewInBackground(id);
        return { entry, renewed };
      }
      if (decision.kind === "fail") throw decision.error;
      const seen = loaded.stored.state;
      try {
        loaded = await this.#flight(id, loaded, request.trigger);
      } catch (error) {
        // The flight failed: the token held may still satisfy this caller (the old
        // token keeps being served while valid); otherwise the failure is the answer.
        const current = await this.#load(id).catch(() => undefined);
        const after =
          current === undefined
            ? undefined
            : decide(current.stored, current.integration, request, this.#ctx.clock.now());
        if (current !== undefined && after?.kind === "use")
          return { entry: this.#keep(current, after.token, request.trigger), renewed };
        throw asTokenwardenError(error);
      }
      renewed ||= loaded.stored.state.tokenVersion !== seen.tokenVersion;
    }
    throw new TokenwardenError(
      "timeout",
      `connection ${id}: other holders kept replacing the token; try again`,
    );
  }

  /** Joins this connection's flight, or starts one. */
  #flight(id: string, seen: Loaded, trigger: TokenRequest["trigger"]) {
    return this.#flights.run(id, () =>
      this.#serial.run(id, () => this.#renewUnderLease(id, seen, trigger)),
    );
  }

  /**
   * Renews under the connection's lease, from a fresh read: `seen` (what the caller
   * decided on) only says what counts as "someone else renewed it meanwhile".
   */
  async #renewUnderLease(
    id: string,
    seen: Loaded,
    trigger: TokenRequest["trigger"],
  ): Promise<Loaded> {
    const { store } = this.#ctx;
    const before = seen.stored.state;
    const moved = (state: { tokenVersion: number; status: string }) =>
      state.tokenVersion !== before.tokenVersion || state.status !== before.status;
    const outcome = await withLease(
      this.#ctx,
      id,
      seen.resolved.timeoutMs + LEASE_MARGIN_MS,
      async () => {
        const now = await store.readTokenVersion(id);
        return now === undefined || moved(now);
      },
      async () => {
        // Read again under the lease: another flight, here or in another process,
        // may have finished just before, and the configuration may have changed.
        const fresh = await loadConnection(store, id);
        if (moved(fresh.stored.state)) return fresh;
        return this.#ctx.hostLimit.run(this.#hostOf(fresh.resolved), () =>
          this.#ctx.renewer.attempt(fresh, trigger),
        );
      },
    );
    return outcome.claimed ? outcome.value : loadConnection(store, id);
  }

  /**
   * The token endpoint's host, for the per-host limit; parsed once per resolved
   * integration (the connections that add nothing to theirs share one). A token URL that discovery will supply is not known yet: the issuer's
   * host stands for it (the endpoint is almost always on it).
   */
  #hostOf(resolved: ResolvedIntegration): string {
    let host = this.#hosts.get(resolved);
    if (host === undefined) {
      host = tokenEndpointHost(resolved.tokenUrl ?? resolved.discoveryUrl ?? "");
      this.#hosts.set(resolved, host);
    }
    return host;
  }

  /**
   * The entry for a token a flight settled on: cached for a caller; for the scheduler
   * (its one-by-one path), stored only in place of one held.
   */
  #keep(loaded: Loaded, token: TokenSet, trigger: TokenRequest["trigger"]): CacheEntry {
    if (trigger !== "schedule") return this.remember(loaded, token);
    const entry = cacheEntry(loaded, token);
    this.#cache.update(loaded.stored.connection.id, entry);
    return entry;
  }

  #renewInBackground(id: string): void {
    if (this.#closed || this.#flights.has(id)) return;
    // The caller already has its token; the failure is told, not thrown.
    this.#obtain(id, { trigger: "demand", minTtlSeconds: 0, renewAhead: true }).catch((error) =>
      this.#ctx.onBackgroundFailure?.(id, error),
    );
  }

  /** Reads a connection, writing first a token the database could not take before. */
  async #load(id: string): Promise<Loaded> {
    if (this.#unwritten.has(id)) await this.#writeUnwritten(id);
    return loadConnection(this.#ctx.store, id);
  }

  #retryUnwritten(id: string): void {
    this.#writeUnwritten(id).catch(() => undefined); // the next timer tries again
  }

  async #writeUnwritten(id: string, last = false): Promise<void> {
    const pending = this.#unwritten.get(id);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    try {
      const now = this.#ctx.clock.now();
      await this.#ctx.store.updateState(id, pending.patch, now, pending.expectedVersion);
      // Written, or a newer token was written meanwhile: either way, done.
      this.#unwritten.delete(id);
      await this.#ctx.publish(id);
    } catch (error) {
      const failure = asTokenwardenError(error);
      if (failure.code !== "storage_error" || last) {
        this.#unwritten.delete(id);
        return;
      }
      pending.retryMs = Math.min(pending.retryMs * 2, UNWRITTEN_RETRY_MS.max);
      pending.timer = setTimeout(() => this.#retryUnwritten(id), pending.retryMs);
      pending.timer.unref();
      throw failure;
    }
  }
}

function cacheEntry(loaded: Loaded, token: TokenSet): CacheEntry {
  return {
    token,
    integration: loaded.integration,
    resolved: loaded.resolved,
    view: accessTokenView(token, loaded.resolved),
    version: loaded.stored.state.tokenVersion,
    renewStartedAt: Number.NEGATIVE_INFINITY,
  };
}
