/**
 * Group commit: what is handed in while a batch is being written waits and goes in
 * the next one, together with everything else that arrived meanwhile. Alone, an item
 * goes at once (after the current turn of the event loop, so items started together
 * go together); under load, batches grow to what the database's round trip lets
 * through, with no timer to tune. One batch is in flight at a time.
 */
interface Waiting<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

export class Batcher<I, O> {
  readonly #flush: (items: I[]) => Promise<O[]>;
  readonly #max: number;
  #queue: Array<Waiting<I, O>> = [];
  #running = false;

  /** `flush` answers each item, in order; if it throws, every item of that batch fails. */
  constructor(flush: (items: I[]) => Promise<O[]>, maxBatch: number) {
    this.#flush = flush;
    this.#max = maxBatch;
  }

  run(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#running) {
        this.#running = true;
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.slice(0, this.#max);
      this.#queue = this.#queue.slice(this.#max);
      try {
        const answers = await this.#flush(batch.map((w) => w.item));
        for (const [i, w] of batch.entries()) w.resolve(answers[i] as O);
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
    this.#running = false;
  }
}
