/**
 * The commands on the database, through a broker opened in this process (without the
 * scheduler: the service does the background refreshes).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import type { ConnectionView } from "../broker/views.js";
import type { Settings } from "../config/settings.js";
import type { TokenEvent } from "../core/events.js";
import { settledPrefix } from "../service/event-stream.js";
import type {
  ApiAnswer,
  ApiCall,
  AuthorizeOptions,
  Backend,
  ConnectLink,
  ConnectLinkInput,
  DeviceAuthorizeOptions,
  FollowOptions,
} from "./backend.js";
import { withinTimeout } from "./device.js";
import { authorizeOnLoopback } from "./loopback.js";

/** How often `events --follow` reads the table for other processes' events. */
const POLL_MS = 500;
/** Events read per round. */
const BATCH = 200;
/** How long a gap in the ids is waited on (a PostgreSQL insert not yet committed). */
const GAP_GRACE_MS = 2000;

/** What a connect link is made with here: where the service listens, where it may return. */
export type LinkSettings = Pick<Settings, "publicUrl" | "connectReturnOrigins">;

export class LocalBackend implements Backend {
  readonly where = "local" as const;
  readonly #tw: Tokenwarden;
  readonly #links: LinkSettings;

  constructor(tw: Tokenwarden, links: LinkSettings) {
    this.#tw = tw;
    this.#links = links;
  }

  get apiKeys(): Backend["apiKeys"] {
    return this.#tw.apiKeys;
  }

  get webhooks(): Backend["webhooks"] {
    return this.#tw.webhooks;
  }

  async createConnectLink(input: ConnectLinkInput): Promise<ConnectLink> {
    const session = await this.#tw.connectSessions.create(input, {
      returnOrigins: this.#links.connectReturnOrigins,
    });
    return {
      url: `${this.#links.publicUrl}/connect/${session.token}`,
      expiresAt: session.expiresAt,
      connectionId: session.connectionId,
    };
  }

  listPresets: Backend["listPresets"] = async () => this.#tw.listPresets();

  findIntegration: Backend["findIntegration"] = (key) => this.#tw.findIntegration(key);
  getIntegration: Backend["getIntegration"] = (key) => this.#tw.getIntegration(key);
  listIntegrations: Backend["listIntegrations"] = () => this.#tw.listIntegrations();
  putIntegration: Backend["putIntegration"] = (input) => this.#tw.putIntegration(input);
  deleteIntegration: Backend["deleteIntegration"] = (key) => this.#tw.deleteIntegration(key);

  findConnection: Backend["findConnection"] = (id) => this.#tw.findConnection(id);
  getConnection: Backend["getConnection"] = (id) => this.#tw.getConnection(id);
  listConnections: Backend["listConnections"] = (filter) => this.#tw.listConnections(filter);
  putConnection: Backend["putConnection"] = (input) => this.#tw.putConnection(input);
  deleteConnection: Backend["deleteConnection"] = (id) => this.#tw.deleteConnection(id);

  applyDeclarative: Backend["applyDeclarative"] = (document) => this.#tw.applyDeclarative(document);

  getToken: Backend["getToken"] = (id, options) => this.#tw.getToken(id, options);
  refresh: Backend["refresh"] = (id) => this.#tw.refresh(id);
  revoke: Backend["revoke"] = (id) => this.#tw.revoke(id);
  listEvents: Backend["listEvents"] = (id, options) => this.#tw.listEvents(id, options);

  async call(id: string, request: ApiCall): Promise<ApiAnswer> {
    const res = await this.#tw.fetch(id, request.path, {
      method: request.method,
      headers: request.headers,
      ...(request.body === undefined ? {} : { body: request.body }),
    });
    return {
      status: res.status,
      statusText: res.statusText,
      headers: [...res.headers],
      text: await res.text(),
    };
  }

  authorize(id: string, options: AuthorizeOptions) {
    return authorizeOnLoopback(this.#tw, id, options);
  }

  /** This process polls the token endpoint, and stops when it ends. */
  async authorizeDevice(id: string, options: DeviceAuthorizeOptions): Promise<ConnectionView> {
    const started = await this.#tw.startDeviceAuthorization(id);
    options.onCode(started);
    return withinTimeout(
      this.#tw.waitForDeviceAuthorization(id),
      options.timeoutMs,
      options.signal,
    );
  }

  cancelDeviceAuthorization(id: string): Promise<void> {
    return this.#tw.cancelDeviceAuthorization(id);
  }

  /**
   * This process's own events arrive through the broker's `event` emitter; other
   * processes' (the service, other CLIs, other nodes) only through the table, which
   * is read every POLL_MS by id, as the service's event stream does.
   */
  async followEvents(
    id: string,
    options: FollowOptions,
    onEvent: (event: TokenEvent) => void,
  ): Promise<void> {
    const tw = this.#tw;
    await tw.getConnection(id);
    let cursor = options.after ?? (await tw.lastEventId());
    const gaps = new Map<number, number>();
    let wake = new AbortController();
    const onOwnEvent = () => wake.abort();
    tw.on("event", onOwnEvent);
    options.onListening?.();
    try {
      while (!options.signal.aborted) {
        const batch = await tw.eventsAfter(cursor, BATCH);
        const settled = settledPrefix(batch, cursor, gaps, Date.now(), GAP_GRACE_MS);
        for (const event of settled) if (event.connectionId === id) onEvent(event);
        cursor = settled.at(-1)?.id ?? cursor;
        for (const gap of gaps.keys()) if (gap <= cursor) gaps.delete(gap);
        if (batch.length === BATCH && settled.length === BATCH) continue;
        const either = AbortSignal.any([options.signal, wake.signal]);
        await sleep(POLL_MS, undefined, { signal: either }).catch(() => undefined);
        if (wake.signal.aborted) wake = new AbortController();
      }
    } finally {
      tw.off("event", onOwnEvent);
    }
  }
}
