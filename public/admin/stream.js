// @ts-check
/**
 * The live feed: `GET /v1/events/stream` (every connection's events, cluster-wide,
 * with ids).
 *
 * Why not `EventSource`: it cannot send headers, and the API key must travel in the
 * Authorization header, never in a URL (where it would reach history, proxy logs and
 * Referer). A short-lived stream ticket in the URL would avoid that, at the cost of a
 * second credential to issue, keep and expire. So the stream is read with `fetch()`,
 * which sends the header like every other call, and its body is parsed by
 * eventsource-parser (the format's spec, as EventSource implements it); this loop does
 * the rest of EventSource's job: reconnect after the server's `retry`, sending
 * `Last-Event-ID` so nothing recorded during the drop is missed.
 */
import { createParser } from "eventsource-parser";

/** @typedef {import("./types.js").TokenEvent} TokenEvent */

/**
 * Follows the stream until `signal` aborts or the key is refused (then it returns).
 * @param {object} options
 * @param {string} options.key
 * @param {AbortSignal} options.signal
 * @param {(event: TokenEvent) => void} options.onEvent
 * @param {() => void} options.onUnauthorized
 */
export async function followEvents({ key, signal, onEvent, onUnauthorized }) {
  /** @type {string | undefined} The id of the last event received: where to resume. */
  let lastEventId;
  let retryMs = 2000;
  let delay = retryMs;
  while (!signal.aborted) {
    try {
      /** @type {Record<string, string>} */
      const headers = { authorization: `Bearer ${key}`, accept: "text/event-stream" };
      if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
      const res = await fetch("/v1/events/stream", { headers, signal, cache: "no-store" });
      if (res.status === 401) {
        onUnauthorized();
        return;
      }
      if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}`);
      delay = retryMs;
      const parser = createParser({
        onEvent(message) {
          if (message.id !== undefined) lastEventId = message.id;
          if (message.event === "token") onEvent(JSON.parse(message.data));
        },
        onRetry(ms) {
          retryMs = ms;
          delay = ms;
        },
      });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
    } catch {
      if (signal.aborted) return;
      delay = Math.min(delay * 2, 30_000); // The service is away: back off.
    }
    await sleep(delay, signal);
  }
}

/**
 * @param {number} ms
 * @param {AbortSignal} signal
 * @returns {Promise<void>}
 */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
