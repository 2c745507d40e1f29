/**
 * The commands through a running service's REST API (TOKENWARDEN_URL with
 * TOKENWARDEN_API_KEY): no database URL or master key on this machine. The service's
 * error bodies become the same TokenwardenError a local command throws, so the output
 * and the exit status are the same.
 */
import { STATUS_CODES } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { createParser } from "eventsource-parser";
import { type Dispatcher, request } from "undici";
import type { CatalogueImportReport } from "../broker/catalogue-import.js";
import type { DeviceAuthorizationStarted } from "../broker/device-flow.js";
import type { AccessToken, ConnectionView, IntegrationView } from "../broker/views.js";
import type { DeliveryView, WebhookView } from "../broker/webhooks/admin.js";
import { ERROR_CODES, type ErrorCode, TokenwardenError } from "../core/errors.js";
import type { TokenEvent } from "../core/events.js";
import type { PresetEntry } from "../presets/catalogue.js";
import type {
  ApiAnswer,
  ApiCall,
  AuthorizeOptions,
  Backend,
  ConnectLink,
  DeviceAuthorizeOptions,
  FollowOptions,
} from "./backend.js";
import { Interrupted, notApproved } from "./device.js";
import { noAnswer } from "./loopback.js";
import { type Answer, serviceError, unexpected, unreachable } from "./remote-errors.js";

type Method = Dispatcher.HttpMethod;

const path = (...segments: string[]) => segments.map(encodeURIComponent).join("/");

export class RemoteBackend implements Backend {
  readonly where = "remote" as const;
  readonly #base: string;
  readonly #apiKey: string;

  constructor(baseUrl: string, apiKey: string) {
    this.#base = baseUrl;
    this.#apiKey = apiKey;
  }

  /** One request; an answer of 400 or more is thrown as the service's error. */
  async #send(
    method: Method,
    target: string,
    options: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#apiKey}`,
      accept: "application/json",
      ...options.headers,
    };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] = "application/json";
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.#base}${target}`, { method, headers, body });
    } catch (error) {
      throw unreachable(this.#base, error);
    }
    const answer = { status: res.statusCode, headers: res.headers, text: await res.body.text() };
    if (answer.status >= 400) throw serviceError(answer) ?? unexpected(answer);
    return answer;
  }

  async #json<T>(method: Method, target: string, body?: unknown): Promise<T> {
    const answer = await this.#send(method, target, body === undefined ? {} : { body });
    return (answer.text === "" ? undefined : JSON.parse(answer.text)) as T;
  }

  /** A 404 `not_found` as `undefined`. */
  async #find<T>(target: string): Promise<T | undefined> {
    try {
      return await this.#json<T>("GET", target);
    } catch (error) {
      if (error instanceof TokenwardenError && error.code === "not_found") return undefined;
      throw error;
    }
  }

  readonly apiKeys: Backend["apiKeys"] = {
    create: (input) => this.#json("POST", "/v1/api-keys", input),
    list: async () => (await this.#json<{ apiKeys: [] }>("GET", "/v1/api-keys")).apiKeys,
    delete: async (id) => {
      await this.#send("DELETE", `/v1/api-keys/${path(id)}`);
    },
  };

  /** `/v1/webhooks`: a 201 is a new webhook, whose answer alone holds its secret. */
  readonly webhooks: Backend["webhooks"] = {
    put: async (id, input) => {
      const answer = await this.#send("PUT", `/v1/webhooks/${path(id)}`, { body: input });
      return { webhook: JSON.parse(answer.text) as WebhookView, created: answer.status === 201 };
    },
    list: async () =>
      (await this.#json<{ webhooks: WebhookView[] }>("GET", "/v1/webhooks")).webhooks,
    remove: async (id) => {
      await this.#send("DELETE", `/v1/webhooks/${path(id)}`);
    },
    deliveries: async (id, options) => {
      const query = new URLSearchParams({ limit: String(options.limit) });
      if (options.status !== undefined) query.set("status", options.status);
      return (
        await this.#json<{ deliveries: DeliveryView[] }>(
          "GET",
          `/v1/webhooks/${path(id)}/deliveries?${query}`,
        )
      ).deliveries;
    },
  };

  /** The service makes the link on its own public URL, with its own return origins. */
  createConnectLink: Backend["createConnectLink"] = (input) =>
    this.#json<ConnectLink>("POST", "/v1/connect-sessions", input);

  listPresets = async () =>
    (await this.#json<{ presets: PresetEntry[] }>("GET", "/v1/presets")).presets;

  findIntegration = (key: string) => this.#find<IntegrationView>(`/v1/integrations/${path(key)}`);
  getIntegration = (key: string) =>
    this.#json<IntegrationView>("GET", `/v1/integrations/${path(key)}`);
  listIntegrations = async () =>
    (await this.#json<{ integrations: IntegrationView[] }>("GET", "/v1/integrations")).integrations;
  putIntegration = (input: Record<string, unknown>) =>
    this.#json<IntegrationView>("PUT", `/v1/integrations/${path(String(input.key))}`, input);
  deleteIntegration = async (key: string) => {
    await this.#send("DELETE", `/v1/integrations/${path(key)}`);
  };

  findConnection = (id: string) => this.#find<ConnectionView>(`/v1/connections/${path(id)}`);
  getConnection = (id: string) => this.#json<ConnectionView>("GET", `/v1/connections/${path(id)}`);
  listConnections: Backend["listConnections"] = async (filter) => {
    const query = new URLSearchParams(filter as Record<string, string>).toString();
    return (
      await this.#json<{ connections: ConnectionView[] }>(
        "GET",
        `/v1/connections${query === "" ? "" : `?${query}`}`,
      )
    ).connections;
  };
  putConnection = (input: Record<string, unknown>) =>
    this.#json<ConnectionView>("PUT", `/v1/connections/${path(String(input.id))}`, input);
  deleteConnection = async (id: string) => {
    await this.#send("DELETE", `/v1/connections/${path(id)}`);
  };

  applyDeclarative: Backend["applyDeclarative"] = (document) =>
    this.#json<CatalogueImportReport>("POST", "/v1/import", document);

  getToken: Backend["getToken"] = (id, options) =>
    this.#json<AccessToken>(
      "GET",
      `/v1/connections/${path(id)}/token${options.minTtlSeconds === undefined ? "" : `?minTtl=${options.minTtlSeconds}`}`,
    );
  refresh = (id: string) =>
    this.#json<ConnectionView>("POST", `/v1/connections/${path(id)}/refresh`);
  revoke = (id: string) => this.#json<ConnectionView>("POST", `/v1/connections/${path(id)}/revoke`);
  listEvents: Backend["listEvents"] = async (id, options) =>
    (
      await this.#json<{ events: TokenEvent[] }>(
        "GET",
        `/v1/connections/${path(id)}/events?limit=${options.limit}`,
      )
    ).events;

  /** Through the proxy, `ANY /v1/proxy/<id>/<path>`. */
  async call(id: string, call: ApiCall): Promise<ApiAnswer> {
    const target = `${this.#base}/v1/proxy/${path(id)}/${call.path.replace(/^\/+/, "")}`;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(target, {
        method: call.method as Method,
        headers: { ...call.headers, authorization: `Bearer ${this.#apiKey}` },
        ...(call.body === undefined ? {} : { body: call.body }),
      });
    } catch (error) {
      throw unreachable(this.#base, error);
    }
    const answer = { status: res.statusCode, headers: res.headers, text: await res.body.text() };
    // The API's own answer is printed as it came, whatever its status; only an error
    // the service gave itself (the call could not be made) is thrown, as locally.
    const own = serviceError(answer);
    if (own !== undefined) throw own;
    const headers: Array<[string, string]> = [];
    for (const [name, value] of Object.entries(answer.headers)) {
      for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value])
        headers.push([name, v]);
    }
    return {
      status: answer.status,
      statusText: STATUS_CODES[answer.status] ?? "",
      headers,
      text: answer.text,
    };
  }

  /**
   * The service's own redirect URL receives the answer; this waits for the
   * connection's `authorize` event on the service's event stream, which is listened
   * to before the person is sent to the server, so the event cannot be missed.
   */
  authorize(id: string, options: AuthorizeOptions): Promise<ConnectionView> {
    return this.#untilAuthorized(id, options.timeoutMs, noAnswer, async () => {
      const started = await this.#json<{ url: string }>(
        "GET",
        `/v1/connections/${path(id)}/authorize`,
      );
      options.onUrl(started.url);
    });
  }

  /**
   * The service polls the token endpoint (it goes on if this command times out first;
   * an interrupted command withdraws it, device.ts).
   */
  authorizeDevice(id: string, options: DeviceAuthorizeOptions): Promise<ConnectionView> {
    return this.#untilAuthorized(
      id,
      options.timeoutMs,
      notApproved,
      async () => {
        options.onCode(
          await this.#json<DeviceAuthorizationStarted>(
            "POST",
            `/v1/connections/${path(id)}/authorize`,
          ),
        );
      },
      options.signal,
    );
  }

  cancelDeviceAuthorization = async (id: string) => {
    await this.#send("DELETE", `/v1/connections/${path(id)}/authorize`);
  };

  /** Starts an authorization once its outcome event cannot be missed, and waits for it. */
  async #untilAuthorized(
    id: string,
    timeoutMs: number,
    timedOut: (timeoutMs: number) => TokenwardenError,
    start: () => Promise<void>,
    interrupt?: AbortSignal,
  ): Promise<ConnectionView> {
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), timeoutMs);
    const onInterrupt = () => stop.abort();
    interrupt?.addEventListener("abort", onInterrupt, { once: true });
    let outcome: TokenEvent | undefined;
    let listening: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => {
      listening = resolve;
    });
    const following = this.followEvents(
      id,
      { signal: stop.signal, onListening: () => listening() },
      (event) => {
        if (event.action !== "authorize") return;
        outcome = event;
        stop.abort();
      },
    );
    try {
      await Promise.race([ready, following]);
      if (interrupt?.aborted !== true) {
        await start();
        await following;
      }
    } finally {
      clearTimeout(timer);
      interrupt?.removeEventListener("abort", onInterrupt);
      stop.abort();
      await following.catch(() => undefined);
    }
    if (interrupt?.aborted === true) throw new Interrupted();
    if (outcome === undefined) throw timedOut(timeoutMs);
    if (outcome.outcome === "failure") {
      const code = (ERROR_CODES as readonly string[]).includes(outcome.errorCode ?? "")
        ? (outcome.errorCode as ErrorCode)
        : "token_endpoint_error";
      throw new TokenwardenError(code, outcome.errorDescription ?? "the authorization failed");
    }
    return this.getConnection(id);
  }

  /** `events --follow` for a client key: the connection's newest page, read every second. */
  async #pollEvents(
    id: string,
    options: FollowOptions,
    onEvent: (event: TokenEvent) => void,
  ): Promise<void> {
    const newest = async () => this.listEvents(id, { limit: 100 });
    let cursor = options.after ?? (await newest())[0]?.id ?? 0;
    options.onListening?.();
    while (!options.signal.aborted) {
      await sleep(CLIENT_POLL_MS, undefined, { signal: options.signal }).catch(() => undefined);
      if (options.signal.aborted) return;
      const fresh = (await newest()).filter((event) => event.id > cursor).reverse();
      for (const event of fresh) onEvent(event);
      cursor = fresh.at(-1)?.id ?? cursor;
    }
  }

  /**
   * `GET /v1/events/stream` (server-sent events, every connection's), kept to this
   * connection's. When the service drops the stream (a restart, a slow reader) it is
   * opened again with `Last-Event-ID`, so no event is missed or repeated.
   */
  async followEvents(
    id: string,
    options: FollowOptions,
    onEvent: (event: TokenEvent) => void,
  ): Promise<void> {
    let lastId = options.after;
    let retryMs = 2000;
    let first = true;
    while (!options.signal.aborted) {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(`${this.#base}/v1/events/stream`, {
          method: "GET",
          headers: {
            authorization: `Bearer ${this.#apiKey}`,
            accept: "text/event-stream",
            ...(lastId === undefined ? {} : { "last-event-id": String(lastId) }),
          },
          signal: options.signal,
        });
      } catch (error) {
        if (options.signal.aborted) return;
        if (first) throw unreachable(this.#base, error);
        await sleep(retryMs, undefined, { signal: options.signal }).catch(() => undefined);
        continue;
      }
      if (res.statusCode >= 400) {
        const answer = {
          status: res.statusCode,
          headers: res.headers,
          text: await res.body.text(),
        };
        const error = serviceError(answer) ?? unexpected(answer);
        // The stream is for admin keys; a client key reads its connection's page instead.
        if (first && error.code === "forbidden") return this.#pollEvents(id, options, onEvent);
        throw error;
      }
      const parser = createParser({
        onEvent: (message) => {
          if (message.id !== undefined && /^\d+$/.test(message.id)) lastId = Number(message.id);
          if (message.event !== "token") return;
          const event = JSON.parse(message.data) as TokenEvent;
          if (event.connectionId === id) onEvent(event);
        },
        onRetry: (ms) => {
          retryMs = ms;
        },
      });
      if (first) options.onListening?.();
      first = false;
      try {
        // Decoded across chunks: a character split between two reads stays whole.
        const decoder = new TextDecoder();
        for await (const chunk of res.body) parser.feed(decoder.decode(chunk, { stream: true }));
      } catch {
        // Aborted, or the connection broke: the loop decides.
      }
      if (options.signal.aborted) return;
      await sleep(retryMs, undefined, { signal: options.signal }).catch(() => undefined);
    }
  }
}

/** How often a client key's follow reads the connection's newest events. */
const CLIENT_POLL_MS = 1000;
