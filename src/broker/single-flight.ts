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

  has(key: K): boolean {
    return this.#inFlight.has(key);
  }

  /** Resolves when everything in flight now has settled (for graceful shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#inFlight.values()]);
  }
}

/**
 * One piece of work per key at a time, in arrival order: a revoke waits for the
 * refresh in flight on its connection, and a refresh waits for the revoke.
 */
export class KeyedMutex<K> {
  readonly #tails = new Map<K, Promise<unknown>>();

  run<V>(key: K, work: () => Promise<V>): Promise<V> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(work, work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}
