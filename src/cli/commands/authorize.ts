import { spawn } from "node:child_process";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Command } from "commander";
import type { Tokenwarden } from "../../broker/tokenwarden.js";
import { invalidConfig, TokenwardenError } from "../../core/errors.js";
import { asTokenwardenError } from "../../core/failure.js";
import {
  type CallbackOutcome,
  callbackOutcome,
  renderCallback,
} from "../../service/callback-outcome.js";
import { type GlobalFlags, withTokenwarden } from "../context.js";
import { printJson, spinner, status } from "../output.js";

interface AuthorizeFlags extends GlobalFlags {
  port: string;
  open: boolean;
  timeout: string;
}

/**
 * `authorize <id>`: the authorization code grant for a command-line user, with the
 * loopback redirect of RFC 8252 §7.3: a one-shot HTTP server on 127.0.0.1 receives the
 * redirect. Register `http://127.0.0.1/oauth/callback` with the server (native
 * clients may use any port), or pass `--port` to match a fixed registration.
 */
export function registerAuthorizeCommand(program: Command): void {
  program
    .command("authorize <id>")
    .description(
      "authorize a connection in a browser, through a loopback redirect on 127.0.0.1 (RFC 8252)",
    )
    .option("--port <port>", "loopback port to listen on (0: any free port)", "0")
    .option("--no-open", "print the URL only; do not try to open a browser")
    .option("--timeout <seconds>", "how long to wait for the browser", "300")
    .addHelpText(
      "after",
      `
The redirect URL is http://127.0.0.1:<port>/oauth/callback.

Examples:
  $ tokenwarden authorize crm-eu
  $ tokenwarden authorize crm-eu --port 8765 --no-open   # a server that wants an exact, registered port`,
    )
    .action(async (id: string, _flags: AuthorizeFlags, command: Command) => {
      const flags = command.optsWithGlobals<AuthorizeFlags>();
      const port = Number(flags.port);
      const timeoutSeconds = Number(flags.timeout);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw invalidConfig("port", "must be a TCP port number");
      if (!(timeoutSeconds > 0)) throw invalidConfig("timeout", "must be a number of seconds");
      await withTokenwarden(flags, async (tw) => {
        const view = await authorizeOnLoopback(tw, id, {
          port,
          open: flags.open,
          timeoutMs: timeoutSeconds * 1000,
        });
        if (flags.json === true) printJson(view);
        else process.stdout.write(`${id}: ${status(view.status)}\n`);
      });
    });
}

async function authorizeOnLoopback(
  tw: Tokenwarden,
  id: string,
  options: { port: number; open: boolean; timeoutMs: number },
): ReturnType<Tokenwarden["completeAuthorization"]> {
  let settle: {
    resolve: (v: Awaited<ReturnType<Tokenwarden["completeAuthorization"]>>) => void;
    reject: (e: unknown) => void;
  };
  const done = new Promise<Awaited<ReturnType<Tokenwarden["completeAuthorization"]>>>(
    (resolve, reject) => {
      settle = { resolve, reject };
    },
  );
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname !== "/oauth/callback") {
      res.writeHead(404).end();
      return;
    }
    tw.completeAuthorization(url.searchParams).then(
      (view) => {
        answer(res, callbackOutcome({ connection: view }, BACK_TO_TERMINAL));
        settle.resolve(view);
      },
      (error: unknown) => {
        answer(res, callbackOutcome({ error: asTokenwardenError(error) }));
        settle.reject(error);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  const redirectUri = `http://127.0.0.1:${port}/oauth/callback`;
  const progress = spinner("Waiting for the browser (Ctrl-C to give up)...");
  const timer = setTimeout(
    () =>
      settle.reject(
        new TokenwardenError(
          "timeout",
          `no answer from the browser within ${options.timeoutMs / 1000} s`,
        ),
      ),
    options.timeoutMs,
  );
  try {
    const started = await tw.startAuthorization(id, { redirectUri });
    process.stderr.write(`\nOpen this URL to authorize ${id}:\n\n  ${started.url}\n\n`);
    if (options.open) openBrowser(started.url);
    const view = await done;
    progress.stop("Authorized.");
    return view;
  } catch (error) {
    progress.stop();
    throw error;
  } finally {
    clearTimeout(timer);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const BACK_TO_TERMINAL = "You can close this window and go back to the terminal.";

/** The same page as the service's redirect URL; no opener to tell (origin "null"). */
function answer(res: ServerResponse, outcome: CallbackOutcome): void {
  const page = renderCallback(outcome, "null");
  res.writeHead(page.status, page.headers).end(page.html);
}

/** Best effort: a desktop opener if there is one; a server or CI has none, which is fine. */
function openBrowser(url: string): void {
  const command =
    process.platform === "darwin"
      ? "open"
      : process.platform === "win32"
        ? "explorer.exe"
        : "xdg-open";
  try {
    const child = spawn(command, [url], { stdio: "ignore", detached: true });
    child.on("error", () => undefined);
    child.unref();
  } catch {
    // no opener: the URL is printed
  }
}
