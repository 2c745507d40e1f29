import pg from "pg";
import type { ChangeNotifier } from "./sql-store.js";

/** The channel of the change feed (sql-renewals.ts notifies on it within its statement). */
export const CHANNEL = "tokenwarden_changes";

export interface PgNotifierOptions {
  /** A connection attempt that takes longer than this fails (ms). */
  connectTimeoutMs: number;
  /** Waits between LISTEN attempts while the database is away: first and longest (ms). */
  retryMs?: { first: number; max: number };
  /** How often the listening connection is checked with a query (ms). */
  heartbeatMs?: number;
}

interface Subscriber {
  onChange: (topic: string) => void;
  onResubscribed: (() => void) | undefined;
}

/**
 * LISTEN/NOTIFY on PostgreSQL: one dedicated connection listens for the whole process.
 * When it is lost (the server restarted, the network broke, a heartbeat went
 * unanswered) it is made again, with growing waits, until the database answers; then
 * subscribers are told (`onResubscribed`): whatever was published while nobody
 * listened is lost, so they drop what they cached.
 */
export class PgChangeNotifier implements ChangeNotifier {
  readonly #pool: pg.Pool;
  readonly #connectionString: string;
  readonly #options: Required<PgNotifierOptions>;
  readonly #subscribers = new Set<Subscriber>();
  #client: pg.Client | undefined;
  #closed = false;
  #first: Promise<void> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryMs: number;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(pool: pg.Pool, connectionString: string, options: PgNotifierOptions) {
    this.#pool = pool;
    this.#connectionString = connectionString;
    this.#options = {
      retryMs: { first: 250, max: 5000 },
      heartbeatMs: 30_000,
      ...options,
    };
    this.#retryMs = this.#options.retryMs.first;
  }

  async publish(topic: string): Promise<void> {
    await this.#pool.query("select pg_notify($1, $2)", [CHANNEL, topic]);
  }

  /**
   * Resolves once the first LISTEN has been tried. If the database does not answer,
   * it keeps trying in the background and `onResubscribed` tells when it got through.
   */
  async subscribe(
    onChange: (topic: string) => void,
    onResubscribed?: () => void,
  ): Promise<() => Promise<void>> {
    const subscriber: Subscriber = { onChange, onResubscribed };
    this.#subscribers.add(subscriber);
    this.#first ??= this.#listen().catch(() => this.#retryLater());
    await this.#first;
    return async () => {
      this.#subscribers.delete(subscriber);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#heartbeat);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  /** One attempt: connect and LISTEN; the connection's failures lead back to a retry. */
  async #listen(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#connectionString,
      // Names it in pg_stat_activity, for an operator (and a test) looking for it.
      application_name: "tokenwarden-listen",
      connectionTimeoutMillis: this.#options.connectTimeoutMs,
      // A heartbeat that gets no answer means the connection is dead, not slow.
      query_timeout: this.#options.connectTimeoutMs,
      keepAlive: true,
    });
    // Both always have a listener: an 'error' without one would end the process.
    client.on("error", () => this.#lost(client));
    client.on("end", () => this.#lost(client));
    client.on("notification", (message) => {
      if (message.channel !== CHANNEL || message.payload === undefined) return;
      for (const subscriber of this.#subscribers) subscriber.onChange(message.payload);
    });
    try {
      await client.connect();
      await client.query(`listen ${CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#retryMs = this.#options.retryMs.first;
    clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => {
      client.query("select 1").catch(() => this.#lost(client));
    }, this.#options.heartbeatMs);
    this.#heartbeat.unref();
  }

  #lost(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    clearInterval(this.#heartbeat);
    client.end().catch(() => undefined);
    this.#retryLater();
  }

  #retryLater(): void {
    if (this.#closed || this.#retryTimer !== undefined) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#listen().then(
        () => {
          if (this.#client === undefined) return; // closed meanwhile
          for (const subscriber of this.#subscribers) subscriber.onResubscribed?.();
        },
        () => {
          this.#retryMs = Math.min(this.#retryMs * 2, this.#options.retryMs.max);
          this.#retryLater();
        },
      );
    }, this.#retryMs);
    this.#retryTimer.unref();
  }
}
