/**
 * The scheduler's renewals write through here: a renewal that completes while others
 * are being written joins the next batch, and a batch is one statement on PostgreSQL
 * (`TokenStateStore.writeRenewals`: token, state, event, lease release and change
 * notice of each). Under a storm of expiries that is a handful of statements for
 * hundreds of refreshes, where one by one it was nine each. Each write keeps its own
 * condition (the token version and status its attempt started from); one whose
 * condition no longer holds comes back `undefined`, and the renewer handles it as any
 * lost write.
 */
import type { Clock } from "../core/clock.js";
import type { RenewalWrite, RenewalWritten, TokenStateStore } from "../store/store.js";
import { Batcher } from "./batcher.js";
import type { HeldLease } from "./lease-batch.js";

/** Writes per statement at most (the JSON parameter stays well under a megabyte). */
const MAX_BATCH = 500;

export class WriteBehind {
  readonly #batcher: Batcher<RenewalWrite, RenewalWritten | undefined>;

  constructor(store: Pick<TokenStateStore, "writeRenewals">, clock: Clock) {
    this.#batcher = new Batcher((writes) => store.writeRenewals(writes, clock.now()), MAX_BATCH);
  }

  write(write: RenewalWrite): Promise<RenewalWritten | undefined> {
    return this.#batcher.run(write);
  }
}

/** What a renewal under a batch-claimed lease writes through (renewer.ts). */
export interface BatchedWrite {
  writes: WriteBehind;
  /** The lease, released by the write when it lands. */
  lease: HeldLease;
  /** The change message for the other processes (as the broker publishes it). */
  topic: string;
}
