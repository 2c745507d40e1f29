/**
 * Concurrent callers asking for the same key share one promise: inside a process, 500
 * `getToken` calls on a stale token become one refresh. (Across processes the lease in
 * the store does the same job.)
 */
export class SingleFlight<K, V> {
  readonly #inFlight = new Map<K, Promise<V>>();

  run(key: K, work: () => Promise<V>): Promise<V> {
    const existing = this.#inFlight.get(key);
    if (existing !== undefined) return existing;
    const promise = work().finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, promise);
    return promise;
  }

  /** Resolves when everything in flight now has settled (for graceful shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#inFlight.values()]);
  }
}
