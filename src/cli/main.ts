#!/usr/bin/env node
/**
 * The `tokenwarden` command: a thin adapter over the broker and the service. Each
 * command parses its flags (commander), calls one library function and prints the
 * result; a failure prints `error <code>: <message>` on stderr (JSON under --json) and
 * exits 1. With TOKENWARDEN_URL (or --service-url) and TOKENWARDEN_API_KEY, commands talk to a
 * running service instead of the database (context.ts).
 */
import { Command, CommanderError } from "commander";
import { addSettingOptions, GLOBAL_SETTINGS } from "../config/settings.js";
import { isTokenwardenError, TokenwardenError } from "../core/errors.js";
import { registerApiKeyCommands } from "./commands/apikey.js";
import { registerAuthorizeCommand } from "./commands/authorize.js";
import { registerCompletionCommand } from "./commands/completion.js";
import { registerConnectCommand } from "./commands/connect.js";
import { registerConnectionCommands } from "./commands/connection.js";
import { registerEventsCommand } from "./commands/events.js";
import { registerIntegrationCommands } from "./commands/integration.js";
import { registerKeyCommands } from "./commands/key.js";
import { registerPresetsCommand } from "./commands/presets.js";
import { registerServeCommand } from "./commands/serve.js";
import { registerTokenCommands } from "./commands/tokens.js";
import { registerWebhookCommands } from "./commands/webhook.js";
import { addRemoteOption } from "./context.js";
import { Interrupted } from "./device.js";
import { printError } from "./output.js";

const VERSION = "0.1.0";

export function buildProgram(): Command {
  const program = new Command("tokenwarden")
    .description("Keeps OAuth 2.0 access tokens valid for the API calls of integration workflows.")
    .version(VERSION)
    .option("--json", "machine-readable output")
    .exitOverride()
    .configureOutput({
      // Usage errors in the same shape as every other failure.
      outputError: (text) =>
        printError(new TokenwardenError("invalid_config", text.replace(/^error: /, "").trimEnd()), {
          json: wantsJson(),
        }),
    })
    .addHelpText(
      "after",
      `
Examples:
  $ tokenwarden integration add acme --grant-type client_credentials \\
      --token-url https://auth.acme.example/oauth/token --client-id my-app
  $ tokenwarden connection add acme-prod --integration acme --environment prod
  $ curl -H "Authorization: Bearer $(tokenwarden token acme-prod)" https://api.acme.example/v1/orders
  $ tokenwarden serve

The master key is TOKENWARDEN_SECRET_KEY (32 bytes, base64), or for SQLite a key file
beside the database; TOKENWARDEN_PREVIOUS_SECRET_KEYS (comma-separated) opens values
sealed under older keys (see "key rotate").

To work through a running service instead (no database URL or master key here), set
TOKENWARDEN_URL (or --service-url) and TOKENWARDEN_API_KEY:
  $ export TOKENWARDEN_URL=https://tokens.example.com TOKENWARDEN_API_KEY=tw_...
  $ tokenwarden token acme-prod

Exit status: 0 on success, 1 with "error <code>: <message>" on stderr
({"error":{"code":...,"message":...}} under --json), 2 for a usage error.`,
    );
  addSettingOptions(program, GLOBAL_SETTINGS);
  addRemoteOption(program);
  registerServeCommand(program);
  registerIntegrationCommands(program);
  registerConnectionCommands(program);
  registerTokenCommands(program);
  registerEventsCommand(program);
  registerAuthorizeCommand(program);
  registerApiKeyCommands(program);
  registerKeyCommands(program);
  registerWebhookCommands(program);
  registerConnectCommand(program);
  registerPresetsCommand(program);
  registerCompletionCommand(program);
  return program;
}

// `tokenwarden token x | head -c 10` closes the pipe early: that is not a failure.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

/** --json anywhere before a `--` (commander may not have parsed it when usage fails). */
function wantsJson(): boolean {
  const args = process.argv.slice(2);
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).includes("--json");
}

buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    if (error instanceof CommanderError) {
      // commander has printed its own message (usage errors) or the help/version.
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    if (error instanceof Interrupted) {
      // Ctrl-C: what the command left behind is cleaned up; 128 + SIGINT, as shells expect.
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 130;
      return;
    }
    const failure = isTokenwardenError(error)
      ? error
      : new TokenwardenError(
          "internal_error",
          error instanceof Error ? error.message : String(error),
        );
    printError(failure, { json: wantsJson() });
    process.exitCode = 1;
  });
