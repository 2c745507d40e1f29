import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { CONNECTION_STATUSES } from "../core/connection.js";

/**
 * Prometheus metrics (prom-client): refreshes by outcome and trigger, refresh latency,
 * tokens by status, proxy requests by status, scheduler lag. Fed by the broker's
 * events, so nothing on the token path waits for them.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly proxyRequests: Counter<"status">;

  constructor(tw: Tokenwarden) {
    collectDefaultMetrics({ register: this.registry, prefix: "tokenwarden_process_" });
    const attempts = new Counter({
      name: "tokenwarden_token_requests_total",
      help: "Attempts to obtain, refresh or revoke a token, and hook runs, by outcome",
      labelNames: ["action", "trigger", "outcome"] as const,
      registers: [this.registry],
    });
    const latency = new Histogram({
      name: "tokenwarden_token_request_duration_seconds",
      help: "Duration of token requests (obtain, refresh, hook, revoke, authorize)",
      labelNames: ["action"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    tw.on("event", (event) => {
      attempts.inc({ action: event.action, trigger: event.trigger, outcome: event.outcome });
      latency.observe({ action: event.action }, event.durationMs / 1000);
    });
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
  }
}
