/**
 * The refresh lease: across every process sharing the store, one holder renews a
 * connection at a time (a "refreshing" flag, but one that a dead holder loses). The
 * same leases, under keys no connection has, keep other once-only work to one holder
 * (an MCP client's registration, mcp-registration.ts).
 *
 * Each claim has a name of its own, so the lease is never re-entrant: two flights in
 * one process exclude each other as two processes do, and only the flight that
 * claimed a lease releases it. While the work runs the lease is kept alive, so a
 * slow token endpoint does not race a fixed deadline.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Clock } from "../core/clock.js";
import { TokenwardenError } from "../core/errors.js";
import type { LeaseStore } from "../store/store.js";

export interface LeaseSettings {
  store: LeaseStore;
  clock: Clock;
  /** This process, as leases name it. */
  holderId: string;
}

/** How often a process waiting on another's lease looks again. */
const WAIT_POLL_MS = { first: 10, max: 100 };

export type LeaseOutcome<T> = { claimed: true; value: T } | { claimed: false };

/**
 * Runs `work` holding the connection's lease. While another holder has it, waits
 * until `changed()` says waiting is moot (that holder wrote a new token), then
 * returns `{ claimed: false }` without running `work`. `what` is the work, as a
 * timeout names it.
 */
export async function withLease<T>(
  settings: LeaseSettings,
  id: string,
  leaseMs: number,
  changed: () => Promise<boolean>,
  work: () => Promise<T>,
  what = `refresh connection ${id}`,
): Promise<LeaseOutcome<T>> {
  const { store, clock } = settings;
  const claim = `${settings.holderId}#${randomBytes(6).toString("base64url")}`;
  // A holder that died loses its claim after leaseMs; waiting longer than a few
  // leases means something else is wrong.
  const deadline = performance.now() + leaseMs * 3;
  let poll = WAIT_POLL_MS.first;
  while (!(await store.tryClaimLease(id, claim, clock.now() + leaseMs, clock.now()))) {
    await sleep(poll);
    poll = Math.min(poll * 2, WAIT_POLL_MS.max);
    if (await changed()) return { claimed: false };
    if (performance.now() > deadline) {
      throw new TokenwardenError("timeout", `gave up waiting for another process to ${what}`);
    }
  }
  const keepAlive = setInterval(() => {
    // Extending our own claim; a failure here only means the lease may lapse, and
    // the conditional token write still keeps a late holder from overwriting.
    store.tryClaimLease(id, claim, clock.now() + leaseMs, clock.now()).catch(() => undefined);
  }, leaseMs / 3);
  keepAlive.unref();
  try {
    return { claimed: true, value: await work() };
  } finally {
    clearInterval(keepAlive);
    await store.releaseLease(id, claim).catch(() => undefined);
  }
}
