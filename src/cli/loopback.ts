/**
 * The authorization code grant for a command-line user working on the database: a
 * one-shot HTTP server on 127.0.0.1 receives the redirect (RFC 8252 §7.3 loopback).
 * Register `http://127.0.0.1/oauth/callback` with the server (native clients may use
 * any port), or pass `--port` to match a fixed registration.
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import type { ConnectionView } from "../broker/views.js";
import { TokenwardenError } from "../core/errors.js";
import { asTokenwardenError } from "../core/failure.js";
import {
  type CallbackOutcome,
  callbackOutcome,
  renderCallback,
} from "../service/callback-outcome.js";
import type { AuthorizeOptions } from "./backend.js";

export async function authorizeOnLoopback(
  tw: Tokenwarden,
  id: string,
  options: AuthorizeOptions,
): Promise<ConnectionView> {
  let resolve: (view: ConnectionView) => void = () => undefined;
  let reject: (error: unknown) => void = () => undefined;
  const done = new Promise<ConnectionView>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname !== "/oauth/callback") {
      res.writeHead(404).end();
      return;
    }
    tw.completeAuthorization(url.searchParams).then(
      (view) => {
        answer(res, callbackOutcome({ connection: view }, BACK_TO_TERMINAL));
        resolve(view);
      },
      (error: unknown) => {
        answer(res, callbackOutcome({ error: asTokenwardenError(error) }));
        reject(error);
      },
    );
  });
  await new Promise<void>((resolveListen, rejectListen) => {
    server.once("error", rejectListen);
    server.listen(options.port, "127.0.0.1", resolveListen);
  });
  const { port } = server.address() as AddressInfo;
  const timer = setTimeout(() => reject(noAnswer(options.timeoutMs)), options.timeoutMs);
  try {
    const started = await tw.startAuthorization(id, {
      redirectUri: `http://127.0.0.1:${port}/oauth/callback`,
    });
    options.onUrl(started.url);
    return await done;
  } finally {
    clearTimeout(timer);
    server.closeAllConnections();
    await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
  }
}

export function noAnswer(timeoutMs: number): TokenwardenError {
  return new TokenwardenError("timeout", `no answer from the browser within ${timeoutMs / 1000} s`);
}

const BACK_TO_TERMINAL = "You can close this window and go back to the terminal.";

/** The same page as the service's redirect URL; no opener to tell (origin "null"). */
function answer(res: ServerResponse, outcome: CallbackOutcome): void {
  const page = renderCallback(outcome, "null");
  res.writeHead(page.status, page.headers).end(page.html);
}
