/**
 * Authorization server metadata per discovery URL, kept as long as the server's
 * Cache-Control allows, within bounds: at least a minute (a server saying `no-store`
 * is not asked on every token request), at most a day (endpoints and keys do move).
 * A failed re-read keeps serving the last good document for a while: a metadata
 * outage must not stop refreshes whose endpoints have not changed.
 */
import { createHash } from "node:crypto";
import type { Clock } from "../core/clock.js";
import type { ServerMetadata } from "../core/server-metadata.js";
import type { DiscoveredServer } from "../oauth/discovery.js";
import type { TransportSettings } from "../oauth/http.js";
import { SingleFlight } from "./single-flight.js";

export const MIN_METADATA_AGE_SECONDS = 60;
export const MAX_METADATA_AGE_SECONDS = 24 * 60 * 60;
export const DEFAULT_METADATA_AGE_SECONDS = 60 * 60;
const STALE_GRACE_MS = 24 * 60 * 60 * 1000;
/** Tenants times integrations: far above any real catalogue, a bound all the same. */
const MAX_ENTRIES = 1000;

interface Entry<T> {
  metadata: T;
  freshUntil: number;
  usableUntil: number;
}

export type Discover = (url: string, transport: TransportSettings) => Promise<DiscoveredServer>;

/** A document read from a URL, and how long its server says it may be reused. */
export type ReadDocument<T> = (
  url: string,
  transport: TransportSettings,
) => Promise<{ metadata: T; maxAgeSeconds: number | undefined }>;

/**
 * Authorization server metadata by default; the same rules serve any metadata
 * document (an MCP server's protected resource metadata, mcp-servers.ts).
 */
export class DiscoveryCache<T = ServerMetadata> {
  readonly #clock: Clock;
  readonly #discover: ReadDocument<T>;
  readonly #entries = new Map<string, Entry<T>>();
  readonly #flights = new SingleFlight<string, T>();

  constructor(clock: Clock, discover: ReadDocument<T>) {
    this.#clock = clock;
    this.#discover = discover;
  }

  async metadata(discoveryUrl: string, transport: TransportSettings): Promise<T> {
    const key = cacheKey(discoveryUrl, transport);
    const now = this.#clock.now();
    const entry = this.#entries.get(key);
    if (entry !== undefined && now < entry.freshUntil) return entry.metadata;
    return this.#flights.run(key, async () => {
      try {
        const found = await this.#discover(discoveryUrl, transport);
        const age = Math.min(
          Math.max(found.maxAgeSeconds ?? DEFAULT_METADATA_AGE_SECONDS, MIN_METADATA_AGE_SECONDS),
          MAX_METADATA_AGE_SECONDS,
        );
        const at = this.#clock.now();
        this.#remember(key, {
          metadata: found.metadata,
          freshUntil: at + age * 1000,
          usableUntil: at + age * 1000 + STALE_GRACE_MS,
        });
        return found.metadata;
      } catch (error) {
        if (entry !== undefined && this.#clock.now() < entry.usableUntil) return entry.metadata;
        throw error;
      }
    });
  }

  /** Forgets every document (what changed while this process was not told is unknown). */
  clear(): void {
    this.#entries.clear();
  }

  /** Forgets the documents read from `url`, through any transport (an integration using it changed). */
  forget(url: string): void {
    for (const key of [...this.#entries.keys()])
      if (key.slice(key.indexOf("|") + 1) === url) this.#entries.delete(key);
  }

  #remember(key: string, entry: Entry<T>): void {
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (this.#entries.size > MAX_ENTRIES) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }
}

/** The same URL through another proxy or trust setting may be another document. */
function cacheKey(url: string, transport: TransportSettings): string {
  const how = createHash("sha256")
    .update(
      JSON.stringify([transport.tls.mode, transport.tls.ca ?? null, transport.proxyUrl ?? null]),
    )
    .digest("base64url");
  return `${how}|${url}`;
}
