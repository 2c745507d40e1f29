import pg from "pg";
import type { ChangeNotifier } from "./sql-store.js";

const CHANNEL = "tokenwarden_changes";

/**
 * LISTEN/NOTIFY on PostgreSQL: one dedicated connection listens for the whole process
 * and reconnects after a failure (caches fall back to token expiry meanwhile).
 */
export class PgChangeNotifier implements ChangeNotifier {
  readonly #pool: pg.Pool;
  readonly #connectionString: string;
  readonly #listeners = new Set<(topic: string) => void>();
  #client: pg.Client | undefined;
  #closed = false;
  #connecting: Promise<void> | undefined;

  constructor(pool: pg.Pool, connectionString: string) {
    this.#pool = pool;
    this.#connectionString = connectionString;
  }

  async publish(topic: string): Promise<void> {
    await this.#pool.query("select pg_notify($1, $2)", [CHANNEL, topic]);
  }

  async subscribe(listener: (topic: string) => void): Promise<() => Promise<void>> {
    this.#listeners.add(listener);
    await this.#ensureListening();
    return async () => {
      this.#listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  #ensureListening(): Promise<void> {
    if (this.#client !== undefined || this.#closed) return Promise.resolve();
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#connectionString });
    client.on("notification", (message) => {
      if (message.channel !== CHANNEL || message.payload === undefined) return;
      for (const listener of this.#listeners) listener(message.payload);
    });
    const reconnect = () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      client.end().catch(() => undefined);
      if (!this.#closed)
        setTimeout(() => void this.#ensureListening().catch(() => undefined), 1000).unref();
    };
    client.on("error", reconnect);
    client.on("end", reconnect);
    await client.connect();
    await client.query(`listen ${CHANNEL}`);
    this.#client = client;
  }
}
