/**
 * Where the broker writes a connection's status, the lifecycle events it raises are
 * written too, in the same transaction (the outbox pattern): a crash loses both or
 * neither, and a rolled-back write announces nothing.
 */
import type { ConnectionStatus, ErrorSummary } from "../../core/connection.js";
import {
  eventsFor,
  type LifecycleSubject,
  lifecycleBody,
  type Transition,
  type TransitionCause,
} from "../../core/lifecycle.js";
import type { StatePatch } from "../../core/state.js";
import type { Store } from "../../store/store.js";

export interface StateWrite {
  id: string;
  patch: StatePatch;
  now: number;
  /** As `Store.updateState`: write only if the token version is still this one. */
  expectedVersion?: number;
  cause: TransitionCause;
}

/**
 * `Store.updateState`, plus the events of the status change. A patch that sets no
 * status changes none and costs one statement as before; one that does reads the
 * status it replaces under a row lock, in the transaction that writes it.
 */
export async function writeState(store: Store, write: StateWrite): Promise<number | undefined> {
  const { id, patch, now, expectedVersion } = write;
  const status = patch.status;
  if (status === undefined) return store.updateState(id, patch, now, expectedVersion);
  return store.transaction(async (trx) => {
    const before = await trx.webhooks.lockStatus(id);
    const version = await trx.updateState(id, patch, now, expectedVersion);
    if (version === undefined || before === undefined) return version;
    await raiseEvents(
      trx,
      { connectionId: id, integration: before.integration, environment: before.environment },
      { previousStatus: before.status, status, cause: write.cause },
      now,
      patch.lastError === undefined ? before.lastError : patch.lastError,
    );
    return version;
  });
}

/** Writes the outbox rows of one transition; `store` must be the writing transaction's. */
export async function raiseEvents(
  store: Store,
  subject: LifecycleSubject,
  transition: Transition,
  now: number,
  error: ErrorSummary | null = null,
): Promise<void> {
  for (const type of eventsFor(transition)) {
    await store.webhooks.enqueue(lifecycleBody(type, subject, transition, now, { error }), now);
  }
}

/** Deletes a connection and announces it, in one transaction. */
export async function deleteAnnounced(store: Store, id: string, now: number): Promise<boolean> {
  return store.transaction(async (trx) => {
    const before = await trx.webhooks.lockStatus(id);
    const deleted = await trx.deleteConnection(id);
    if (deleted && before !== undefined) {
      await raiseEvents(
        trx,
        { connectionId: id, integration: before.integration, environment: before.environment },
        { previousStatus: before.status, status: null, cause: "delete" },
        now,
      );
    }
    return deleted;
  });
}

export type { ConnectionStatus };
