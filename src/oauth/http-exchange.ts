/**
 * One request and its whole answer read into memory, through undici's dispatch API.
 * `undici.request` hands each answer over as a stream (a Readable, an async resource,
 * listeners on an abort signal) and the caller reads it back into one buffer; for a
 * token response of a few hundred bytes that wrapping cost more than the request, and
 * at a thousand renewals a second it was a tenth of the process's CPU. Here the chunks
 * are collected as they arrive, up to a size, within a time limit; http.ts says what a
 * failure means.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";

export interface Exchange {
  method: "GET" | "POST";
  url: URL;
  headers: Record<string, string>;
  body: string | undefined;
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface ExchangeLimits {
  maxBytes: number;
  timeoutMs: number;
  /** The error when the answer passes `maxBytes` (its status is known by then). */
  tooLarge(status: number): Error;
}

/** Why an exchange was stopped at its time limit (as `AbortSignal.timeout` names it). */
export function timeoutReason(): Error {
  return new DOMException("The operation timed out", "TimeoutError");
}

/**
 * Sends `req` through `dispatcher` and resolves with the whole answer; rejects with
 * undici's error, `limits.tooLarge(status)`, or `timeoutReason()` when the time is up
 * (the request is then aborted, wherever it is).
 */
export function exchange(
  dispatcher: Dispatcher,
  req: Exchange,
  limits: ExchangeLimits,
): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const collector = new Collector(limits, resolve, reject);
    collector.timer = setTimeout(() => collector.fail(timeoutReason()), limits.timeoutMs);
    collector.timer.unref();
    const { url } = req;
    dispatcher.dispatch(
      {
        origin: url.origin,
        path: url.search === "" ? url.pathname : `${url.pathname}${url.search}`,
        method: req.method,
        headers: req.headers,
        body: req.body ?? null,
      },
      collector,
    );
  });
}

/** The handler undici calls as the answer arrives; settles its promise once. */
class Collector implements Dispatcher.DispatchHandler {
  timer: NodeJS.Timeout | undefined;
  readonly #limits: ExchangeLimits;
  readonly #resolve: (answer: Answer) => void;
  readonly #reject: (error: unknown) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #status = 0;
  #headers: IncomingHttpHeaders = {};
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #settled = false;
  /** Failed before undici handed a controller over: abort as soon as it does. */
  #abortWith: Error | undefined;

  constructor(
    limits: ExchangeLimits,
    resolve: (answer: Answer) => void,
    reject: (error: unknown) => void,
  ) {
    this.#limits = limits;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abortWith !== undefined) controller.abort(this.#abortWith);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    status: number,
    headers: IncomingHttpHeaders,
  ): void {
    // A 1xx interim answer comes first and is followed by the real one.
    this.#status = status;
    this.#headers = headers;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return;
    this.#size += chunk.length;
    if (this.#size > this.#limits.maxBytes) {
      this.fail(this.#limits.tooLarge(this.#status));
      return;
    }
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    this.#settle();
    const body =
      this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
    this.#resolve({ status: this.#status, headers: this.#headers, body });
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (this.#settled) return;
    this.#settle();
    this.#reject(error);
  }

  /** Ends the exchange with `error`, and stops the request. */
  fail(error: Error): void {
    if (this.#settled) return;
    this.#settle();
    this.#reject(error);
    if (this.#controller === undefined) this.#abortWith = error;
    else this.#controller.abort(error);
  }

  #settle(): void {
    this.#settled = true;
    clearTimeout(this.timer);
  }
}
