/**
 * Failures nobody waits for: a renewal the scheduler or a background refresh started,
 * and the scheduler's own look for due connections. An attempt's own failure is an
 * event already; the others (the database went away before the attempt) become a
 * `warning`, so none passes unsaid. A warning carries the error's code and message,
 * never a secret.
 */
import { TokenwardenError } from "../core/errors.js";
import { asTokenwardenError } from "../core/failure.js";
import type { TokenwardenWarning } from "./api-calls.js";
import type { EventLog } from "./event-log.js";
import type { ScopeCache } from "./scope-cache.js";

export class BackgroundFailures {
  readonly #events: EventLog;
  readonly #scopes: ScopeCache;
  readonly #warn: (warning: TokenwardenWarning) => void;

  constructor(events: EventLog, scopes: ScopeCache, warn: (warning: TokenwardenWarning) => void) {
    this.#events = events;
    this.#scopes = scopes;
    this.#warn = warn;
  }

  /** A background renewal of `id` failed before reaching the token endpoint. */
  async renewalFailed(id: string, error: unknown): Promise<void> {
    if (this.#events.wasRecorded(error)) return;
    const scope = await this.#scopes.get(id).catch(() => undefined);
    this.#warn({
      code: "renewal_failed",
      connectionId: id,
      ...(scope === undefined ? {} : { integration: scope.integration }),
      ...codeOf(error),
      message: `connection ${id}: a background renewal failed before reaching the token endpoint: ${asTokenwardenError(error).message}`,
    });
  }

  /** The scheduler could not look for due connections, `failures` times in a row. */
  schedulerFailed(error: unknown, failures: number): void {
    this.#warn({
      code: "scheduler_failed",
      ...codeOf(error),
      message: `the scheduler could not look for due connections (${failures} in a row): ${asTokenwardenError(error).message}`,
    });
  }
}

function codeOf(error: unknown): { errorCode?: string } {
  return error instanceof TokenwardenError ? { errorCode: error.code } : {};
}
