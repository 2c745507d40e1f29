/**
 * The device authorization grant (RFC 8628) as the broker runs it: ask for a user
 * code, hand it to the person, then poll the token endpoint until they approve, the
 * code expires, or they refuse.
 *
 * The flow lives in the store (the device code sealed, its expiry, the interval and
 * when the next poll is due), not in the memory of the process that started it: any
 * process on the database can follow it (`wait`), and a process that adopts flows
 * (one running the scheduler) takes up those it finds at start, from before a
 * restart, and those whose poller went away. Each poll holds the connection's lease
 * and first reads the flow again, so a cluster polls each flow once per interval, never
 * after it ended, and never with a device code already used. A new flow for the same
 * connection replaces the running one, in every process, and a cancelled one ends there.
 *
 * Each poll itself, and what a failed one means, is device-poll.ts.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Clock } from "../core/clock.js";
import { invalidConfig, TokenwardenError } from "../core/errors.js";
import { asTokenwardenError, summarize } from "../core/failure.js";
import type { DpopNonces } from "../oauth/dpop.js";
import { requestDeviceAuthorization } from "../oauth/extension-grants.js";
import type { HttpClient } from "../oauth/http.js";
import type { Store } from "../store/store.js";
import { loadPrepared, newRetries, pollOnce } from "./device-poll.js";
import type { EventLog } from "./event-log.js";
import { withLease } from "./lease.js";
import type { ProtocolSupport } from "./protocol-support.js";
import { dpopFor, type Loaded, loadConnection, type Renewer } from "./renewer.js";
import type { TokenSource } from "./token-source.js";

/** What the person needs: `POST /v1/connections/:id/authorize`'s answer. */
export interface DeviceAuthorizationStarted {
  userCode: string;
  verificationUri: string;
  verificationUriComplete: string | null;
  expiresAt: string;
  interval: number;
}

export interface DeviceFlowContext {
  store: Store;
  clock: Clock;
  /** The owner's HTTP client: every request of a flow goes through its pools. */
  http: HttpClient;
  holderId: string;
  renewer: Renewer;
  tokens: TokenSource;
  events: EventLog;
  dpopNonces: DpopNonces;
  /** Discovery fills the endpoints an integration leaves out; `auto` remembers its method. */
  protocol: ProtocolSupport;
  /**
   * Whether this process takes up flows it did not start: those in the store when it
   * starts, and any whose next poll is long overdue (the process polling it is gone).
   */
  adopt: boolean;
}

const LEASE_MARGIN_MS = 2000;
/** How often an adopting process looks for flows nobody polls. */
const ADOPT_EVERY_MS = 15_000;
/** A flow whose next poll is this late has lost the process that polled it. */
const ORPHANED_AFTER_MS = 15_000;

interface Following {
  flowId: string;
  abort: AbortController;
  /** Settles when the flow ends: with the connection authorized, or with why it did not. */
  done: Promise<void>;
  failure: TokenwardenError | undefined;
}

export class DeviceFlows {
  readonly #ctx: DeviceFlowContext;
  /** The flows this process polls, by connection. */
  readonly #following = new Map<string, Following>();
  readonly #sweeper: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;
  #closed = false;

  constructor(ctx: DeviceFlowContext) {
    this.#ctx = ctx;
    if (ctx.adopt) {
      this.#sweep(true);
      this.#sweeper = setInterval(() => this.#sweep(false), ADOPT_EVERY_MS);
      this.#sweeper.unref();
    }
  }

  async start(id: string): Promise<DeviceAuthorizationStarted> {
    const { clock, store } = this.#ctx;
    const loaded = await loadPrepared(this.#ctx, id);
    if (loaded.integration.grantType !== "device_code") {
      throw invalidConfig(
        "grantType",
        `integration ${loaded.integration.key} does not use device_code`,
      );
    }
    const auth = await requestDeviceAuthorization(loaded.resolved, {
      clock,
      http: this.#ctx.http,
    });
    const flowId = randomBytes(9).toString("base64url");
    const intervalMs = auth.interval * 1000;
    // Stored before anyone polls: from here on the flow outlives this process.
    await store.putDeviceAuthorization({
      connectionId: id,
      flowId,
      deviceCode: auth.deviceCode,
      expiresAt: auth.expiresAt,
      intervalMs,
      nextPollAt: clock.now() + intervalMs,
    });
    this.#follow(id, flowId, loaded);
    return {
      userCode: auth.userCode,
      verificationUri: auth.verificationUri,
      verificationUriComplete: auth.verificationUriComplete ?? null,
      expiresAt: new Date(auth.expiresAt).toISOString(),
      interval: auth.interval,
    };
  }

  /**
   * Waits for the connection's flow to end, following it from the store when this
   * process did not start it; rejects with why it did not authorize when this process
   * saw it fail. Resolves at once when there is no flow.
   */
  async wait(id: string): Promise<void> {
    let following = this.#following.get(id);
    if (following === undefined) {
      const flow = await this.#ctx.store.getDeviceAuthorization(id);
      if (flow === undefined || this.#closed) return;
      following = this.#follow(id, flow.flowId);
    }
    await following.done;
    if (following.failure !== undefined) throw following.failure;
  }

  /**
   * Withdraws the connection's pending flow (the person gave up, or the command that
   * waited on it was interrupted). It is deleted under the connection's lease, so a
   * poll in flight anywhere finishes first and none follows; every process following
   * it stops at its next look, waiters here are told it was cancelled, and so is the
   * history (an `authorize` event). `not_found` when no flow is pending.
   */
  async cancel(id: string): Promise<void> {
    const { store } = this.#ctx;
    const started = performance.now();
    const loaded = await loadConnection(store, id);
    const outcome = await withLease(
      this.#ctx,
      id,
      loaded.resolved.timeoutMs + LEASE_MARGIN_MS,
      async () => false,
      async () => {
        const flow = await store.getDeviceAuthorization(id);
        if (flow === undefined) return undefined;
        return (await store.deleteDeviceAuthorization(id, flow.flowId)) ? flow.flowId : undefined;
      },
    );
    const flowId = outcome.claimed ? outcome.value : undefined;
    if (flowId === undefined)
      throw new TokenwardenError(
        "not_found",
        `connection ${id} has no device authorization pending`,
      );
    const cancelled = new TokenwardenError(
      "conflict",
      `the device authorization of connection ${id} was cancelled before it was approved; start it again`,
    );
    const following = this.#following.get(id);
    if (following?.flowId === flowId) {
      following.failure = cancelled;
      following.abort.abort();
    }
    await this.#recordFailure(loaded, "manual", started, cancelled);
  }

  /** Stops polling here; the flows stay in the store for another process, or the next start. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    await this.#sweeping;
    const all = [...this.#following.values()];
    for (const following of all) following.abort.abort();
    await Promise.all(all.map((f) => f.done));
  }

  /** Takes up stored flows this process does not poll: all of them, or only orphans. */
  #sweep(all: boolean): void {
    if (this.#sweeping !== undefined || this.#closed) return;
    const { clock, store } = this.#ctx;
    this.#sweeping = (async () => {
      const now = clock.now();
      for (const flow of await store.listDeviceAuthorizations()) {
        if (this.#closed) return;
        if (this.#following.get(flow.connectionId)?.flowId === flow.flowId) continue;
        if (!all && now < flow.nextPollAt + ORPHANED_AFTER_MS) continue;
        this.#follow(flow.connectionId, flow.flowId);
      }
    })()
      // The store not answering now: the next sweep looks again.
      .catch(() => undefined)
      .finally(() => {
        this.#sweeping = undefined;
      });
  }

  #follow(id: string, flowId: string, loaded?: Loaded): Following {
    const previous = this.#following.get(id);
    if (previous?.flowId === flowId) return previous;
    previous?.abort.abort();
    const abort = new AbortController();
    const following: Following = { flowId, abort, done: Promise.resolve(), failure: undefined };
    following.done = this.#poll(id, flowId, loaded, abort.signal).then(
      () => undefined,
      (error: unknown) => {
        following.failure = asTokenwardenError(error);
      },
    );
    this.#following.set(id, following);
    void following.done.finally(() => {
      if (this.#following.get(id) === following) this.#following.delete(id);
    });
    return following;
  }

  async #poll(
    id: string,
    flowId: string,
    given: Loaded | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    const { clock, store } = this.#ctx;
    const started = performance.now();
    let loaded: Loaded;
    try {
      loaded = given ?? (await loadConnection(store, id));
    } catch (error) {
      // The connection (or its integration) was deleted: its flow goes with it.
      if (asTokenwardenError(error).code === "not_found")
        await store.deleteDeviceAuthorization(id, flowId);
      throw error;
    }
    // The new tokens are bound to a new key (the old tokens, if any, are replaced).
    const dpop = await dpopFor(loaded.integration, undefined, this.#ctx.dpopNonces);
    const retries = newRetries();
    for (;;) {
      const flow = await store.getDeviceAuthorization(id);
      if (flow?.flowId !== flowId) return;
      const waitMs = Math.min(flow.nextPollAt, flow.expiresAt) - clock.now();
      if (waitMs > 0) {
        try {
          await (clock.sleep?.(waitMs, signal) ?? sleep(waitMs, undefined, { signal }));
        } catch {
          return; // replaced by a newer flow here, cancelled, or the broker is closing
        }
        if (signal.aborted) return;
        continue; // read it again: another process may have polled meanwhile
      }
      const outcome = await withLease(
        this.#ctx,
        id,
        loaded.resolved.timeoutMs + LEASE_MARGIN_MS,
        async () => false,
        () => pollOnce(this.#ctx, id, flowId, dpop, retries),
      );
      if (!outcome.claimed) continue;
      const step = outcome.value;
      if (step.kind === "ended") return;
      if (step.kind === "wait") continue;
      if (step.kind === "pending") {
        retries.count = 0;
        retries.last = undefined;
        continue;
      }
      if (step.kind === "retry") {
        retries.count += 1;
        retries.last = step.failure;
        continue;
      }
      if (step.kind === "failed") {
        // The connection (or its integration) was deleted: its flow went with it.
        if (step.failure.code === "not_found") throw step.failure;
        throw await this.#fail(loaded, started, step.failure);
      }
      const { token } = step;
      await this.#ctx.tokens.exclusive(id, async () => {
        const current = await loadConnection(store, id);
        const after = await this.#ctx.renewer.store(current, token, {
          trigger: "authorize",
          action: "authorize",
          started,
        });
        if (after.stored.token !== undefined) this.#ctx.tokens.remember(after, after.stored.token);
      });
      return;
    }
  }

  /** The flow's end as an event; a history that cannot be written does not hide `failure`. */
  async #recordFailure(
    loaded: Loaded,
    trigger: "manual" | "authorize",
    started: number,
    failure: TokenwardenError,
  ): Promise<void> {
    const at = { connectionId: loaded.stored.connection.id, integration: loaded.integration.key };
    await this.#ctx.events
      .record(at, trigger, "authorize", started, { error: failure })
      .catch(() => undefined);
  }

  async #fail(
    loaded: Loaded,
    started: number,
    failure: TokenwardenError,
  ): Promise<TokenwardenError> {
    const { clock, store } = this.#ctx;
    const id = loaded.stored.connection.id;
    await this.#recordFailure(loaded, "authorize", started, failure);
    if (failure.oauthError !== "access_denied") {
      await store
        .updateState(id, { lastError: summarize(failure, clock.now()) }, clock.now())
        .catch(() => undefined);
    }
    return failure;
  }
}
