/**
 * `http_request_duration_seconds`, the histogram every request adds to. prom-client's
 * own histogram validates and joins its labels into a key on each observation, which
 * costs more than the rest of a cached token read's bookkeeping together; here a
 * request finds its cell through three map lookups on values it already has (route
 * pattern, method, status), and the series are built only when scraped. It is
 * registered in the same registry and reads exactly as a prom-client histogram.
 */
import type { Histogram, Registry } from "prom-client";

interface Cell {
  /** Per bucket, the observations that fell in it (not cumulative). */
  counts: number[];
  count: number;
  sum: number;
}

interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

export class RequestDurations {
  readonly name = "http_request_duration_seconds";
  readonly help = "Duration of HTTP requests answered, by method, route pattern and status";
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly #bounds: readonly number[];
  /** route → method → status → cell. */
  readonly #cells = new Map<string, Map<string, Map<number, Cell>>>();

  constructor(registry: Registry, bounds: readonly number[]) {
    this.#bounds = bounds;
    // prom-client types only its own classes; the registry itself asks for no more
    // than a name, help, type, aggregator and `get`.
    registry.registerMetric(this as unknown as Histogram);
  }

  observe(route: string, method: string, status: number, seconds: number): void {
    let byMethod = this.#cells.get(route);
    if (byMethod === undefined) {
      byMethod = new Map();
      this.#cells.set(route, byMethod);
    }
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) {
      byStatus = new Map();
      byMethod.set(method, byStatus);
    }
    let cell = byStatus.get(status);
    if (cell === undefined) {
      cell = { counts: new Array<number>(this.#bounds.length + 1).fill(0), count: 0, sum: 0 };
      byStatus.set(status, cell);
    }
    let bucket = 0;
    while (bucket < this.#bounds.length && seconds > (this.#bounds[bucket] as number)) bucket++;
    cell.counts[bucket] = (cell.counts[bucket] ?? 0) + 1;
    cell.count++;
    cell.sum += seconds;
  }

  /** The series, in prom-client's shape: cumulative buckets, `+Inf`, sum and count. */
  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: Sample[];
  }> {
    const values: Sample[] = [];
    for (const [route, byMethod] of this.#cells) {
      for (const [method, byStatus] of byMethod) {
        for (const [status, cell] of byStatus) {
          const labels = { method, route, status_code: String(status) };
          let cumulative = 0;
          this.#bounds.forEach((le, i) => {
            cumulative += cell.counts[i] ?? 0;
            values.push({
              value: cumulative,
              labels: { ...labels, le },
              metricName: this.#series("bucket"),
            });
          });
          values.push(
            {
              value: cell.count,
              labels: { ...labels, le: "+Inf" },
              metricName: this.#series("bucket"),
            },
            { value: cell.sum, labels, metricName: this.#series("sum") },
            { value: cell.count, labels, metricName: this.#series("count") },
          );
        }
      }
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }

  reset(): void {
    this.#cells.clear();
  }

  #series(suffix: "bucket" | "sum" | "count"): string {
    return `${this.name}_${suffix}`;
  }
}
