/**
 * The scheduler's refresh leases, claimed many at a time: the renewals a tick starts
 * together claim their leases in one statement under one claim name, which one
 * statement keeps alive while any of them runs. A lease is still the lease of lease.ts
 * (a dead holder loses it; two flights never share one, since no flight holds two
 * claims on one connection), and is released with the renewal's write (write-behind.ts)
 * or alone.
 */
import { randomBytes } from "node:crypto";
import type { ConnectionStatus } from "../core/connection.js";
import { Batcher } from "./batcher.js";
import type { LeaseSettings } from "./lease.js";

export interface HeldLease {
  readonly id: string;
  readonly holder: string;
  /** The token version and status right after the claim; `undefined`: the connection is gone. */
  readonly current: { tokenVersion: number; status: ConnectionStatus } | undefined;
  /** The renewal's write released it. */
  releasedWith(): void;
  /** Releases it, unless the write did. */
  release(): Promise<void>;
}

/** Claims per statement at most. */
const MAX_BATCH = 500;

/** One claim name's leases, kept alive while any is held. */
class Claim {
  readonly held = new Set<string>();
  readonly #timer: NodeJS.Timeout;

  constructor(settings: LeaseSettings, holder: string, leaseMs: number) {
    const { store, clock } = settings;
    this.#timer = setInterval(() => {
      // Extending our own claims; a failure only means they may lapse, and the
      // conditional token write still keeps a late holder from overwriting.
      store.extendLeases(holder, clock.now() + leaseMs).catch(() => undefined);
    }, leaseMs / 3);
    this.#timer.unref();
  }

  drop(id: string): void {
    this.held.delete(id);
    if (this.held.size === 0) clearInterval(this.#timer);
  }
}

export class LeaseBatches {
  readonly #settings: LeaseSettings;
  readonly #batcher: Batcher<{ id: string; leaseMs: number }, HeldLease | undefined>;

  constructor(settings: LeaseSettings) {
    this.#settings = settings;
    this.#batcher = new Batcher((items) => this.#claim(items), MAX_BATCH);
  }

  /** The connection's lease, or `undefined` while another holder has it. */
  claim(id: string, leaseMs: number): Promise<HeldLease | undefined> {
    return this.#batcher.run({ id, leaseMs });
  }

  async #claim(
    items: Array<{ id: string; leaseMs: number }>,
  ): Promise<Array<HeldLease | undefined>> {
    const { store, clock, holderId } = this.#settings;
    const holder = `${holderId}#${randomBytes(6).toString("base64url")}`;
    const leaseMs = Math.max(...items.map((i) => i.leaseMs));
    const ids = [...new Set(items.map((i) => i.id))];
    const now = clock.now();
    const claimed = await store.tryClaimLeases(ids, holder, now + leaseMs, now);
    const claim = new Claim(this.#settings, holder, leaseMs);
    const byId = new Map<string, HeldLease>();
    for (const { id, current } of claimed) {
      claim.held.add(id);
      let released = false;
      byId.set(id, {
        id,
        holder,
        current,
        releasedWith: () => {
          released = true;
          claim.drop(id);
        },
        release: async () => {
          if (released) return;
          released = true;
          claim.drop(id);
          await store.releaseLease(id, holder).catch(() => undefined);
        },
      });
    }
    if (claim.held.size === 0) claim.drop("");
    // An id asked for twice in one batch gets its lease once.
    return items.map((i) => {
      const lease = byId.get(i.id);
      byId.delete(i.id);
      return lease;
    });
  }
}
