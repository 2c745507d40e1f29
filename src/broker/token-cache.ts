/**
 * The tokens this process serves from memory, bounded: a process may hold a million
 * connections' rows, but caches only the tokens it is asked for, up to a size. Reading
 * stays a map lookup (and a flag set); making room evicts by "second chance" (CLOCK):
 * the oldest entry goes unless it was read since it was last passed over, in which case
 * it moves to the young end and the next oldest is tried. So a token read often stays,
 * one only ever written (a scheduled renewal nobody reads here) goes first, and no read
 * reorders the map.
 */
import { invalidConfig } from "../core/errors.js";
import type { Integration } from "../core/integration.js";
import type { ResolvedIntegration } from "../core/resolve.js";
import type { TokenSet } from "../core/token-set.js";
import type { AccessToken } from "./views.js";

export interface CacheEntry {
  token: TokenSet;
  integration: Integration;
  resolved: ResolvedIntegration;
  view: AccessToken;
  /** The token version it was read or written at. */
  version: number;
  /** When a background renewal was last started for it (ms, performance clock). */
  renewStartedAt: number;
}

/** Tokens kept in memory by default: a few tens of MiB at most. */
export const DEFAULT_TOKEN_CACHE_SIZE = 10_000;

interface Slot {
  entry: CacheEntry;
  /** Read since it was stored or last passed over by eviction. */
  read: boolean;
}

export class TokenCache {
  readonly #max: number;
  /** Insertion order is age: the first is the oldest. */
  readonly #slots = new Map<string, Slot>();

  constructor(maxEntries = DEFAULT_TOKEN_CACHE_SIZE) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw invalidConfig("tokenCacheSize", "must be a whole number of at least 1");
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#slots.size;
  }

  /** The hot path: a map lookup. */
  get(id: string): CacheEntry | undefined {
    const slot = this.#slots.get(id);
    if (slot === undefined) return undefined;
    slot.read = true;
    return slot.entry;
  }

  /**
   * Stores `entry` for `id`, unless the entry held is of a newer token version (a
   * slower path finishing after a faster one must not put an older token back).
   */
  set(id: string, entry: CacheEntry): void {
    const slot = this.#slots.get(id);
    if (slot !== undefined) {
      if (slot.entry.version <= entry.version) slot.entry = entry;
      return;
    }
    // Room first, so the entry being stored is never the one evicted.
    if (this.#slots.size >= this.#max) this.#evictOne();
    this.#slots.set(id, { entry, read: false });
  }

  /** Replaces the entry of `id` only if one is held (see `set`); never adds one. */
  update(id: string, entry: CacheEntry): void {
    const slot = this.#slots.get(id);
    if (slot !== undefined && slot.entry.version <= entry.version) slot.entry = entry;
  }

  has(id: string): boolean {
    return this.#slots.has(id);
  }

  delete(id: string): void {
    this.#slots.delete(id);
  }

  /** Drops every entry whose integration is `key`. */
  deleteIntegration(key: string): void {
    for (const [id, slot] of this.#slots)
      if (slot.entry.integration.key === key) this.#slots.delete(id);
  }

  clear(): void {
    this.#slots.clear();
  }

  /** Evicts the oldest entry not read since it was last passed over. */
  #evictOne(): void {
    for (const [id, slot] of this.#slots) {
      this.#slots.delete(id);
      if (!slot.read) return;
      // Read: a second chance at the young end. Each pass clears a flag a read set, so
      // the work is paid for by the reads, and ends: all flags clear after one round.
      slot.read = false;
      this.#slots.set(id, slot);
    }
  }
}
