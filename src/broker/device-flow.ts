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
 * The connection is read again for each poll (an integration changed meanwhile is
 * polled as it is now; a deleted connection ends its flow), its endpoints filled from
 * discovery. A poll that fails for now (no answer, a 5xx, a 429) does not end the flow:
 * the next one waits longer (device-polling.ts), until the code expires.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Clock } from "../core/clock.js";
import { isTransientPollFailure, pollBackoffMs } from "../core/device-polling.js";
import { invalidConfig, TokenwardenError } from "../core/errors.js";
import { asTokenwardenError, summarize } from "../core/failure.js";
import type { TokenSet } from "../core/token-set.js";
import type { DpopContext, DpopNonces } from "../oauth/dpop.js";
import { pollDeviceToken, requestDeviceAuthorization } from "../oauth/extension-grants.js";
import type { HttpClient } from "../oauth/http.js";
import type { Store } from "../store/store.js";
import type { EventLog } from "./event-log.js";
import { withLease } from "./lease.js";
import type { ProtocolSupport } from "./protocol-support.js";
import { boundTo, dpopFor, type Loaded, loadConnection, type Renewer } from "./renewer.js";
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

/** RFC 8628 §3.5: `slow_down` adds 5 seconds to the interval, for every later poll. */
const SLOW_DOWN_MS = 5000;
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

/** What one poll, under the lease, found. */
type Step =
  | { kind: "ended" } // authorized, refused, replaced or cancelled, here or by another process
  | { kind: "wait" } // not due yet: another process just polled
  | { kind: "pending" } // authorization_pending or slow_down: polled again at the interval
  | { kind: "retry"; failure: TokenwardenError } // failed for now: polled again later
  | { kind: "token"; token: TokenSet }
  | { kind: "failed"; failure: TokenwardenError };

/** This process's polls of one flow that failed for now, in a row, and the last failure. */
interface Retries {
  count: number;
  last: TokenwardenError | undefined;
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
    const loaded = await this.#load(id);
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
    const retries: Retries = { count: 0, last: undefined };
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
        () => this.#pollOnce(id, flowId, dpop, retries),
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

  /** The connection as it is now, its endpoints filled from discovery. */
  async #load(id: string): Promise<Loaded> {
    const loaded = await loadConnection(this.#ctx.store, id);
    return { ...loaded, resolved: await this.#ctx.protocol.prepare(loaded.resolved) };
  }

  /** One poll, holding the lease: the flow is read again first, and moved on after. */
  async #pollOnce(
    id: string,
    flowId: string,
    dpop: DpopContext | undefined,
    retries: Retries,
  ): Promise<Step> {
    const { clock, store } = this.#ctx;
    const flow = await store.getDeviceAuthorization(id);
    if (flow?.flowId !== flowId) return { kind: "ended" };
    if (clock.now() >= flow.expiresAt) {
      if (!(await store.deleteDeviceAuthorization(id, flowId))) return { kind: "ended" };
      const lastFailure =
        retries.last === undefined ? "" : ` (the last poll failed: ${retries.last.message})`;
      return {
        kind: "failed",
        failure: new TokenwardenError(
          "needs_reauth",
          `the user code for connection ${id} expired before it was approved${lastFailure}; start again`,
          { oauthError: "expired_token" },
        ),
      };
    }
    if (clock.now() < flow.nextPollAt) return { kind: "wait" }; // another process just polled
    let token: TokenSet;
    try {
      const loaded = await this.#load(id);
      token = await pollDeviceToken(loaded.resolved, flow.deviceCode, {
        ...this.#ctx.protocol.options(loaded.resolved),
        ...(dpop === undefined ? {} : { dpop }),
      });
    } catch (error) {
      const failure = asTokenwardenError(error);
      const slowDown = failure.oauthError === "slow_down";
      if (slowDown || failure.oauthError === "authorization_pending") {
        const intervalMs = flow.intervalMs + (slowDown ? SLOW_DOWN_MS : 0);
        await store.rescheduleDeviceAuthorization(id, flowId, {
          intervalMs,
          nextPollAt: clock.now() + intervalMs,
        });
        return { kind: "pending" };
      }
      if (isTransientPollFailure(failure)) {
        // The interval stays the server's; only this wait is longer.
        const backoffMs = pollBackoffMs(
          flow.intervalMs,
          retries.count + 1,
          failure.retryAfterSeconds,
        );
        await store.rescheduleDeviceAuthorization(id, flowId, {
          intervalMs: flow.intervalMs,
          nextPollAt: clock.now() + backoffMs,
        });
        return { kind: "retry", failure };
      }
      // access_denied, expired_token, another refusal, or the connection gone: it ends here.
      await store.deleteDeviceAuthorization(id, flowId);
      return { kind: "failed", failure };
    }
    // Ended before the lease is let go: no process polls with a used device code.
    await store.deleteDeviceAuthorization(id, flowId);
    return { kind: "token", token: boundTo(token, dpop) };
  }

  async #fail(
    loaded: Loaded,
    started: number,
    failure: TokenwardenError,
  ): Promise<TokenwardenError> {
    const { clock, store, events } = this.#ctx;
    const id = loaded.stored.connection.id;
    await events
      .record(
        { connectionId: id, integration: loaded.integration.key },
        "authorize",
        "authorize",
        started,
        {
          error: failure,
        },
      )
      .catch(() => undefined);
    if (failure.oauthError !== "access_denied") {
      await store
        .updateState(id, { lastError: summarize(failure, clock.now()) }, clock.now())
        .catch(() => undefined);
    }
    return failure;
  }
}
