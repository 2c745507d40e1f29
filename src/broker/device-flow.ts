/**
 * The device authorization grant (RFC 8628) as the broker runs it: ask for a user
 * code, hand it to the person, then poll the token endpoint until they approve, the
 * code expires, or they refuse. The poll runs in the process that started the flow
 * (it alone holds the device code); each poll holds the connection's lease, so it
 * never overlaps a refresh or revoke elsewhere in the cluster. A new flow for the same
 * connection in this process replaces the running one.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Clock } from "../core/clock.js";
import { invalidConfig, TokenwardenError } from "../core/errors.js";
import { asTokenwardenError, summarize } from "../core/failure.js";
import type { DpopNonces } from "../oauth/dpop.js";
import {
  type DeviceAuthorization,
  pollDeviceToken,
  requestDeviceAuthorization,
} from "../oauth/extension-grants.js";
import type { HttpClient } from "../oauth/http.js";
import type { Store } from "../store/store.js";
import type { EventLog } from "./event-log.js";
import { withLease } from "./lease.js";
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
}

/** RFC 8628 §3.5: `slow_down` adds 5 seconds to the interval, for every later poll. */
const SLOW_DOWN_MS = 5000;
const LEASE_MARGIN_MS = 2000;

interface Running {
  abort: AbortController;
  /** Settles when the flow ends: with the connection authorized, or with why it did not. */
  done: Promise<void>;
  failure: TokenwardenError | undefined;
}

export class DeviceFlows {
  readonly #ctx: DeviceFlowContext;
  readonly #running = new Map<string, Running>();

  constructor(ctx: DeviceFlowContext) {
    this.#ctx = ctx;
  }

  async start(id: string): Promise<DeviceAuthorizationStarted> {
    const loaded = await loadConnection(this.#ctx.store, id);
    if (loaded.integration.grantType !== "device_code") {
      throw invalidConfig(
        "grantType",
        `integration ${loaded.integration.key} does not use device_code`,
      );
    }
    const auth = await requestDeviceAuthorization(loaded.resolved, {
      clock: this.#ctx.clock,
      http: this.#ctx.http,
    });
    this.#running.get(id)?.abort.abort();
    const abort = new AbortController();
    const running: Running = { abort, done: Promise.resolve(), failure: undefined };
    running.done = this.#poll(loaded, auth, abort.signal).then(
      () => undefined,
      (error: unknown) => {
        running.failure = asTokenwardenError(error);
      },
    );
    this.#running.set(id, running);
    void running.done.finally(() => {
      if (this.#running.get(id) === running) this.#running.delete(id);
    });
    return {
      userCode: auth.userCode,
      verificationUri: auth.verificationUri,
      verificationUriComplete: auth.verificationUriComplete ?? null,
      expiresAt: new Date(auth.expiresAt).toISOString(),
      interval: auth.interval,
    };
  }

  /** Waits for this process's flow of `id` to end; rejects with why it did not authorize. */
  async wait(id: string): Promise<void> {
    const running = this.#running.get(id);
    if (running === undefined) return;
    await running.done;
    if (running.failure !== undefined) throw running.failure;
  }

  async close(): Promise<void> {
    const all = [...this.#running.values()];
    for (const running of all) running.abort.abort();
    await Promise.all(all.map((r) => r.done));
  }

  async #poll(loaded: Loaded, auth: DeviceAuthorization, signal: AbortSignal): Promise<void> {
    const { clock, store } = this.#ctx;
    const id = loaded.stored.connection.id;
    const started = performance.now();
    // The new tokens are bound to a new key (the old tokens, if any, are replaced).
    const dpop = await dpopFor(loaded.integration, undefined, this.#ctx.dpopNonces);
    let intervalMs = auth.interval * 1000;
    for (;;) {
      try {
        await sleep(intervalMs, undefined, { signal });
      } catch {
        return; // replaced by a newer flow, or the broker is closing
      }
      if (clock.now() >= auth.expiresAt) {
        throw await this.#fail(
          loaded,
          started,
          new TokenwardenError(
            "needs_reauth",
            `the user code for connection ${id} expired before it was approved; start again`,
            { oauthError: "expired_token" },
          ),
        );
      }
      try {
        const outcome = await withLease(
          this.#ctx,
          id,
          loaded.resolved.timeoutMs + LEASE_MARGIN_MS,
          async () => false,
          () =>
            pollDeviceToken(loaded.resolved, auth.deviceCode, {
              clock,
              http: this.#ctx.http,
              ...(dpop === undefined ? {} : { dpop }),
            }),
        );
        if (!outcome.claimed) continue;
        const token = boundTo(outcome.value, dpop);
        await this.#ctx.tokens.exclusive(id, async () => {
          const current = await loadConnection(store, id);
          const after = await this.#ctx.renewer.store(current, token, {
            trigger: "authorize",
            action: "authorize",
            started,
          });
          if (after.stored.token !== undefined)
            this.#ctx.tokens.remember(after, after.stored.token);
        });
        return;
      } catch (error) {
        const failure = asTokenwardenError(error);
        if (failure.oauthError === "authorization_pending") continue;
        if (failure.oauthError === "slow_down") {
          intervalMs += SLOW_DOWN_MS;
          continue;
        }
        // access_denied, expired_token, or the server failing: the flow ends here.
        throw await this.#fail(loaded, started, failure);
      }
    }
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
