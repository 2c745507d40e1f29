import { spawn } from "node:child_process";
import type { Command } from "commander";
import type { ConnectionView } from "../../broker/views.js";
import { invalidConfig } from "../../core/errors.js";
import type { Backend } from "../backend.js";
import { type GlobalFlags, withBackend } from "../context.js";
import { authorizeOnDevice } from "../device.js";
import { printJson, spinner, status } from "../output.js";

interface AuthorizeFlags extends GlobalFlags {
  port: string;
  open: boolean;
  timeout: string;
  cancel?: boolean;
}

/**
 * `authorize <id>`: the authorization code grant for a command-line user. On the
 * database, the redirect comes to a loopback server on 127.0.0.1 (RFC 8252 §7.3,
 * loopback.ts); through a service, to the service's own redirect URL, and the command
 * waits for the outcome on its event stream (remote.ts). The device grant (RFC 8628)
 * prints the user code; the token endpoint is polled by this process on the database,
 * by the service through one (device.ts); Ctrl-C withdraws it, and so does
 * `authorize <id> --cancel` for a flow started elsewhere.
 */
export function registerAuthorizeCommand(program: Command): void {
  program
    .command("authorize <id>")
    .description(
      "authorize a connection in a browser (the authorization code grant) and wait for the answer; for the device grant (RFC 8628), print the user code and wait",
    )
    .option(
      "--port <port>",
      "on the database: the loopback port to listen on (0: any free port)",
      "0",
    )
    .option("--no-open", "print the URL only; do not try to open a browser")
    .option("--timeout <seconds>", "how long to wait for the browser or the approval", "300")
    .option(
      "--cancel",
      "withdraw the connection's pending device authorization (nothing polls it any more)",
    )
    .addHelpText(
      "after",
      `
On the database the redirect URL is http://127.0.0.1:<port>/oauth/callback; through a
service (TOKENWARDEN_URL) it is the service's <public-url>/oauth/callback.

Examples:
  $ tokenwarden authorize crm-eu
  $ tokenwarden authorize crm-eu --port 8765 --no-open   # a server that wants an exact, registered port
  $ tokenwarden authorize tv-lobby --cancel              # stop a device flow nobody will approve

Ctrl-C while a device flow waits withdraws it (exit status 130); a --timeout leaves it
pending for a running service to finish.`,
    )
    .action(async (id: string, _flags: AuthorizeFlags, command: Command) => {
      const flags = command.optsWithGlobals<AuthorizeFlags>();
      const port = Number(flags.port);
      const timeoutSeconds = Number(flags.timeout);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw invalidConfig("port", "must be a TCP port number");
      if (!(timeoutSeconds > 0)) throw invalidConfig("timeout", "must be a number of seconds");
      await withBackend(flags, async (api) => {
        if (flags.cancel === true) {
          await api.cancelDeviceAuthorization(id);
          if (flags.json === true) printJson({ connectionId: id, cancelled: true });
          else process.stdout.write(`${id}: device authorization withdrawn\n`);
          return;
        }
        const connection = await api.getConnection(id);
        const { grantType } = await api.getIntegration(connection.integration);
        const view =
          grantType === "device_code"
            ? await authorizeOnDevice(api, id, timeoutSeconds * 1000, flags)
            : await inBrowser(api, id, { port, timeoutMs: timeoutSeconds * 1000, flags });
        if (flags.json === true) printJson(view);
        else process.stdout.write(`${id}: ${status(view.status)}\n`);
      });
    });
}

/** The authorization code grant: the URL printed (and opened), then the wait. */
async function inBrowser(
  api: Backend,
  id: string,
  options: { port: number; timeoutMs: number; flags: AuthorizeFlags },
): Promise<ConnectionView> {
  let progress: ReturnType<typeof spinner> | undefined;
  return api
    .authorize(id, {
      port: options.port,
      timeoutMs: options.timeoutMs,
      onUrl: (url) => {
        process.stderr.write(`\nOpen this URL to authorize ${id}:\n\n  ${url}\n\n`);
        if (options.flags.open) openBrowser(url);
        progress = spinner("Waiting for the browser (Ctrl-C to give up)...", options.flags);
      },
    })
    .finally(() => progress?.stop());
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
