/**
 * Prometheus metrics (prom-client): the process's own under their standard names
 * (`process_*`, `nodejs_*`), HTTP requests by method, route pattern and status, error
 * codes answered, token requests by outcome, integration and error code, refresh
 * latency, connections by status, status changes, the scheduler's lag and renewals in
 * flight. Labels are bounded: a route is its pattern (never the URL, which holds ids),
 * an integration is configured, an error code is one of a fixed list. Fed by the
 * broker's events and Fastify's hooks, so nothing on the token path waits for them.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { StatusChange } from "../broker/status.js";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { CONNECTION_STATUSES } from "../core/connection.js";
import type { TokenEvent } from "../core/events.js";
import { RequestDurations } from "./request-durations.js";

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly proxyRequests: Counter<"status">;
  readonly #httpDuration: RequestDurations;
  readonly #httpErrors: Counter<"method" | "route" | "code">;
  readonly #unsubscribe: () => void;

  constructor(tw: Tokenwarden) {
    collectDefaultMetrics({ register: this.registry });
    this.#httpDuration = new RequestDurations(
      this.registry,
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    );
    this.#httpErrors = new Counter({
      name: "tokenwarden_http_errors_total",
      help: "Error answers of the service, by method, route pattern and error code",
      labelNames: ["method", "route", "code"] as const,
      registers: [this.registry],
    });
    const attempts = new Counter({
      name: "tokenwarden_token_requests_total",
      help: "Attempts to obtain, refresh or revoke a token, and hook runs, by outcome, integration and error code",
      labelNames: ["action", "trigger", "outcome", "integration", "error_code"] as const,
      registers: [this.registry],
    });
    const latency = new Histogram({
      name: "tokenwarden_token_request_duration_seconds",
      help: "Duration of token requests (obtain, refresh, hook, revoke, authorize), by integration",
      labelNames: ["action", "integration"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    const onEvent = (event: TokenEvent) => {
      attempts.inc({
        action: event.action,
        trigger: event.trigger,
        outcome: event.outcome,
        integration: event.integration,
        error_code: event.errorCode ?? "",
      });
      latency.observe(
        { action: event.action, integration: event.integration },
        event.durationMs / 1000,
      );
    };
    const statusChanges = new Counter({
      name: "tokenwarden_connection_status_changes_total",
      help: "Connections' status changes written by this process, by integration, from and to",
      labelNames: ["integration", "from", "to"] as const,
      registers: [this.registry],
    });
    const onStatus = (change: StatusChange) =>
      statusChanges.inc({
        integration: change.integration,
        from: change.previousStatus,
        to: change.status,
      });
    tw.on("event", onEvent);
    tw.on("status", onStatus);
    this.#unsubscribe = () => {
      tw.off("event", onEvent);
      tw.off("status", onStatus);
    };
    this.proxyRequests = new Counter({
      name: "tokenwarden_proxy_requests_total",
      help: "Requests forwarded through /v1/proxy, by the status returned",
      labelNames: ["status"] as const,
      registers: [this.registry],
    });
    new Gauge({
      name: "tokenwarden_connections",
      help: "Connections by status",
      labelNames: ["status"] as const,
      registers: [this.registry],
      async collect() {
        // While the database is away the last counts stay: the rest is still scraped.
        const counts = await tw.countConnectionsByStatus().catch(() => undefined);
        if (counts === undefined) return;
        for (const status of CONNECTION_STATUSES) this.set({ status }, counts[status] ?? 0);
      },
    });
    new Gauge({
      name: "tokenwarden_scheduler_lag_seconds",
      help: "How late the scheduler picked up the last due connection",
      registers: [this.registry],
      collect() {
        this.set(tw.schedulerLagMs / 1000);
      },
    });
    new Gauge({
      name: "tokenwarden_scheduler_renewals_in_flight",
      help: "Renewals the scheduler of this process runs now",
      registers: [this.registry],
      collect() {
        this.set(tw.schedulerInFlight.now);
      },
    });
    new Gauge({
      name: "tokenwarden_scheduler_renewals_in_flight_peak",
      help: "The most renewals the scheduler of this process has run at once",
      registers: [this.registry],
      collect() {
        this.set(tw.schedulerInFlight.peak);
      },
    });
  }

  /** Stops listening to the broker (the server closes; the broker may live on). */
  close(): void {
    this.#unsubscribe();
  }

  /** A request answered (Fastify's onResponse): its duration, and its error code if any. */
  observeRequest(request: FastifyRequest, reply: FastifyReply, errorCode: string | null): void {
    const method = KNOWN_METHODS.has(request.method) ? request.method : "other";
    // The matched pattern (`/v1/connections/:id/token`), never the URL: ids stay out.
    const route = request.is404 ? "unmatched" : (request.routeOptions.url ?? "unmatched");
    this.#httpDuration.observe(route, method, reply.statusCode, reply.elapsedTime / 1000);
    if (errorCode !== null) this.#httpErrors.inc({ method, route, code: errorCode });
  }

  /** A token read answered by the lane, counted as Fastify's onResponse counts it. */
  observeTokenRead(seconds: number): void {
    this.#httpDuration.observe(TOKEN_READ_ROUTE, "GET", 200, seconds);
  }
}

/** The token read's route, as its answers from the lane (token-read-lane.ts) are counted. */
const TOKEN_READ_ROUTE = "/v1/connections/:id/token";

/** Methods as labels; any other (WebDAV's and the like) counts as `other`. */
const KNOWN_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
]);
