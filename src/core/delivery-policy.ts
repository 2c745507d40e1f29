/**
 * When a failed webhook delivery is tried again (PRODUCT.md: "retried with backoff for
 * 24 hours"). Pure, with the clock and the random source injected.
 */
export interface DeliveryPolicy {
  /** Waits after the 1st, 2nd, ... failed attempt; the last one repeats. */
  delaysMs: readonly number[];
  /** How long after the event it is still tried. */
  maxAgeMs: number;
}

export const DEFAULT_DELIVERY_POLICY: DeliveryPolicy = {
  // Close to the Standard Webhooks / Svix schedule: quick at first, then hours apart.
  delaysMs: [
    5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 28_800_000,
  ],
  maxAgeMs: 24 * 3600_000,
};

/**
 * The next attempt after `attempts` failed ones, or `null` to give up. The wait is
 * jittered by up to a tenth so that deliveries failing together spread out; one last
 * attempt is made at the end of the window rather than none past it.
 */
export function nextAttemptAt(
  attempts: number,
  createdAt: number,
  now: number,
  policy: DeliveryPolicy,
  random: () => number,
): number | null {
  const deadline = createdAt + policy.maxAgeMs;
  if (now >= deadline) return null;
  const index = Math.min(Math.max(attempts, 1), policy.delaysMs.length) - 1;
  const base = policy.delaysMs[index] ?? 0;
  const at = now + Math.round(base * (1 + random() * 0.1));
  return Math.min(at, deadline);
}
