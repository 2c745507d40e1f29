/**
 * One poll of a stored device flow (RFC 8628 §3.4), made holding the connection's
 * lease: the flow is read again first (another process may have polled it, ended it or
 * replaced it), the connection too (an integration changed meanwhile is polled as it
 * is now, its endpoints filled from discovery; a deleted connection ends its flow),
 * and the store moved on after: the next poll's time, or the flow deleted once it
 * ended. A poll that fails for now (no answer, a 5xx, a 429) does not end the flow:
 * the next one waits longer (core/device-polling.ts), until the code expires.
 */
import type { Clock } from "../core/clock.js";
import { isTransientPollFailure, pollBackoffMs } from "../core/device-polling.js";
import { TokenwardenError } from "../core/errors.js";
import { asTokenwardenError } from "../core/failure.js";
import type { TokenSet } from "../core/token-set.js";
import type { DpopContext } from "../oauth/dpop.js";
import { pollDeviceToken } from "../oauth/extension-grants.js";
import type { DeviceAuthorizationStore } from "../store/store.js";
import type { ProtocolSupport } from "./protocol-support.js";
import { boundTo, type Loaded, loadConnection } from "./renewer.js";

export interface DevicePollContext {
  store: DeviceAuthorizationStore & Parameters<typeof loadConnection>[0];
  clock: Clock;
  /** Discovery fills the endpoints an integration leaves out; `auto` remembers its method. */
  protocol: ProtocolSupport;
}

/** RFC 8628 §3.5: `slow_down` adds 5 seconds to the interval, for every later poll. */
const SLOW_DOWN_MS = 5000;

/** What one poll found. */
export type Step =
  | { kind: "ended" } // authorized, refused, replaced or cancelled, here or by another process
  | { kind: "wait" } // not due yet: another process just polled
  | { kind: "pending" } // authorization_pending or slow_down: polled again at the interval
  | { kind: "retry"; failure: TokenwardenError } // failed for now: polled again later
  | { kind: "token"; token: TokenSet }
  | { kind: "failed"; failure: TokenwardenError };

/** A process's polls of one flow that failed for now, in a row, and the last failure. */
export interface Retries {
  count: number;
  last: TokenwardenError | undefined;
}

export function newRetries(): Retries {
  return { count: 0, last: undefined };
}

/** The connection as it is now, its endpoints filled from discovery. */
export async function loadPrepared(ctx: DevicePollContext, id: string): Promise<Loaded> {
  const loaded = await loadConnection(ctx.store, id);
  return { ...loaded, resolved: await ctx.protocol.prepare(loaded.resolved) };
}

/** One poll, holding the lease: the flow is read again first, and moved on after. */
export async function pollOnce(
  ctx: DevicePollContext,
  id: string,
  flowId: string,
  dpop: DpopContext | undefined,
  retries: Retries,
): Promise<Step> {
  const { clock, store } = ctx;
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
    const loaded = await loadPrepared(ctx, id);
    token = await pollDeviceToken(loaded.resolved, flow.deviceCode, {
      ...ctx.protocol.options(loaded.resolved),
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
