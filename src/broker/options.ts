/**
 * What `Tokenwarden.open` takes (on top of the store's own options, store/open.ts) and
 * what `getToken` does: the broker's library options, each with its default.
 */
import type { Clock } from "../core/clock.js";
import type { HttpClientOptions } from "../oauth/http.js";
import type { OpenStoreOptions } from "../store/open.js";
import type { Store } from "../store/store.js";
import type { SchedulerOptions } from "./scheduler.js";
import type { DispatcherOptions } from "./webhooks/dispatcher.js";

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
  /**
   * The most tokens this process keeps in memory to answer `getToken` without the
   * database (default 10,000; a token not read lately goes first). Only tokens asked for
   * here are kept: the scheduler's renewals refresh a held token but add none.
   */
  tokenCacheSize?: number;
  /** Limits of this instance's HTTP client (its own pools, closed with it). */
  http?: HttpClientOptions;
  /** `false`: this process delivers no webhooks (others sharing the store do). */
  webhooks?: boolean | DispatcherOptions;
}

export interface GetTokenOptions {
  /** The token must stay valid this long (capped at half its lifetime). Default 10. */
  minTtlSeconds?: number;
}
