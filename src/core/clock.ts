/**
 * Time is injected everywhere a decision depends on it, so the refresh policy and
 * the broker can be tested with a clock that the test moves, not with sleeps.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Waits `ms` of this clock's time, or rejects when `signal` aborts. Optional: without
   * it, waits are real timers. The device flow's polling waits here, so a test can run
   * it on a clock it moves.
   */
  sleep?(ms: number, signal: AbortSignal): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock a test (or a benchmark) sets and advances by hand. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start: number = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
  set(ms: number): void {
    this.#now = ms;
  }
}
