/**
 * One API request through an undici dispatcher, its answer handed on as soon as it
 * can be: a body that came whole with the headers, or a small one of known length, is
 * handed on as bytes (a proxy then sends it in one write, with no stream between), any
 * other streams with backpressure. This is
 * undici's own `request` without what the proxy does not use (the async resource, the
 * option checks, a body stream for every answer).
 */
import { Readable } from "node:stream";
import { type Dispatcher, errors } from "undici";
import type { HeaderMap } from "./api-call.js";

/** The most of a body of known length read whole before the answer is handed on. */
export const HELD_BODY_LIMIT = 64 * 1024;

/** An answer: its body held (bytes) or streaming. */
export interface ApiAnswer {
  status: number;
  headers: HeaderMap;
  body: Buffer | Readable;
}

/** The answer, or a failure to get one as `failed` words it. */
export function dispatchApi(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  failed: (error: Error) => Error,
): Promise<ApiAnswer> {
  // A tunnel is not an API call (undici's `request` refuses it the same way).
  if (options.method === "CONNECT")
    return Promise.reject(failed(new errors.InvalidArgumentError("invalid method")));
  return new Promise((resolve, reject) => {
    const handler = new AnswerHandler(options.method === "HEAD", resolve, (error) =>
      reject(failed(error)),
    );
    dispatcher.dispatch(options, handler);
  });
}

function ignore(): void {}

const DIGITS = /^\d{1,6}$/;

/** A length that says the whole body is small; anything else (absent, a list, junk) does not. */
function heldLength(value: string | string[] | undefined): boolean {
  if (typeof value !== "string" || !DIGITS.test(value)) return false;
  return Number(value) <= HELD_BODY_LIMIT;
}

class AnswerHandler implements Dispatcher.DispatchHandler {
  readonly #head: boolean;
  readonly #resolve: (answer: ApiAnswer) => void;
  readonly #reject: (error: Error) => void;
  /** The answer was handed on (or the call failed): nothing more to settle. */
  #settled = false;
  #status = 0;
  #headers: HeaderMap = {};
  /** The body's chunks, while it is held. */
  #held: Buffer[] | undefined;
  #stream: AnswerStream | undefined;

  constructor(head: boolean, resolve: (answer: ApiAnswer) => void, reject: (error: Error) => void) {
    this.#head = head;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** Nothing to do; its presence tells undici this handler takes a controller. */
  onRequestStart(): void {}

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: HeaderMap,
  ): void {
    if (status < 200) return; // informational: the answer is still to come
    this.#status = status;
    this.#headers = headers;
    // No body to hold: a HEAD's length, or a 204's or a 304's, is not of this body.
    if (this.#head || status === 204 || status === 304) {
      this.#streamOn(controller);
      return;
    }
    this.#held = [];
    // A small body of known length is held to its end. Any other only as far as it
    // came with the headers, often all of it: undici parses what one read brought
    // before a microtask runs, and what comes later streams (an event stream is never
    // kept waiting).
    if (!heldLength(headers["content-length"])) queueMicrotask(() => this.#streamOn(controller));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const held = this.#held;
    if (held !== undefined) held.push(chunk);
    else if (this.#stream?.push(chunk) === false) controller.pause();
  }

  onResponseEnd(): void {
    const held = this.#held;
    if (held === undefined) {
      this.#stream?.finish();
      return;
    }
    if (this.#settled) return;
    this.#settled = true;
    const body = held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held);
    this.#resolve({ status: this.#status, headers: this.#headers, body });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    // Before the answer was handed on, the call fails; after, its body does, and a
    // body nobody listens to any more (drained, dropped) must not crash the process.
    if (this.#stream !== undefined) this.#stream.on("error", ignore).destroy(error);
    else if (!this.#settled) {
      this.#settled = true;
      this.#reject(error);
    }
  }

  /** Hands the answer on with its body as a stream, starting with what was held. */
  #streamOn(controller: Dispatcher.DispatchController): void {
    if (this.#settled) return;
    this.#settled = true;
    const stream = new AnswerStream(controller);
    let room = true;
    for (const chunk of this.#held ?? []) room = stream.push(chunk);
    if (!room) controller.pause();
    this.#held = undefined;
    this.#stream = stream;
    this.#resolve({ status: this.#status, headers: this.#headers, body: stream });
  }
}

/** A body as it arrives: reading on resumes the upstream, destroying it aborts the request. */
class AnswerStream extends Readable {
  readonly #controller: Dispatcher.DispatchController;
  #ended = false;

  constructor(controller: Dispatcher.DispatchController) {
    super({ highWaterMark: HELD_BODY_LIMIT });
    this.#controller = controller;
  }

  finish(): void {
    this.#ended = true;
    this.push(null);
  }

  override _read(): void {
    this.#controller.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#ended) this.#controller.abort(error ?? new Error("the answer's body was dropped"));
    callback(error);
  }
}
