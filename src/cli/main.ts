#!/usr/bin/env node
/**
 * The `tokenwarden` command: a thin adapter over the broker and the service. Each
 * command parses its flags (commander), calls one library function and prints the
 * result; failures print `error <code>: <message>` and exit non-zero.
 */
import { Command, Option } from "commander";
import { resolveSettings, type SettingFlags } from "../config/settings.js";
import { isTokenwardenError } from "../core/errors.js";
import { startService } from "../service/serve.js";

const VERSION = "0.1.0";

function settingOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        "--database <url>",
        "sqlite:<path> or postgres://... [env TOKENWARDEN_DATABASE_URL]",
      ),
    )
    .addOption(
      new Option("--config <file>", "tokenwarden.yaml to upsert first [env TOKENWARDEN_CONFIG]"),
    )
    .addOption(
      new Option(
        "--log-level <level>",
        "fatal|error|warn|info|debug|trace|silent [env TOKENWARDEN_LOG_LEVEL]",
      ),
    );
}

export function buildProgram(): Command {
  const program = new Command("tokenwarden")
    .description("Keeps OAuth 2.0 access tokens valid for the API calls of integration workflows.")
    .version(VERSION)
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });

  settingOptions(
    program
      .command("serve")
      .description("run the service: REST API, OAuth redirect, proxy, admin page and scheduler")
      .addOption(
        new Option("--host <host>", "address to listen on [env TOKENWARDEN_HOST]").default(
          undefined,
          "127.0.0.1",
        ),
      )
      .addOption(
        new Option("--port <port>", "port to listen on [env TOKENWARDEN_PORT]").default(
          undefined,
          "4180",
        ),
      )
      .addOption(
        new Option(
          "--public-url <url>",
          "base of the redirect URL <public-url>/oauth/callback [env TOKENWARDEN_PUBLIC_URL]",
        ),
      )
      .addHelpText(
        "after",
        `
Examples:
  $ tokenwarden serve
  $ tokenwarden serve --port 8080 --public-url https://tokens.example.com
  $ TOKENWARDEN_SECRET_KEY=$(openssl rand -base64 32) tokenwarden serve --database postgres://localhost/tokenwarden

On the first start with no API key at all, one is created and printed once.`,
      ),
  ).action(async (flags: SettingFlags) => {
    const settings = resolveSettings(flags);
    const service = await startService(settings);
    const lines = [
      `Tokenwarden listening on ${service.url} (database ${settings.database})`,
      `Admin page:   ${settings.publicUrl}/`,
      `Redirect URL: ${settings.publicUrl}/oauth/callback`,
    ];
    if (service.firstApiKey !== undefined) {
      lines.push(
        "",
        "First run: an API key was created. It is shown only now; keep it somewhere safe:",
        "",
        `  ${service.firstApiKey}`,
        "",
        `Use it as "Authorization: Bearer <key>" for ${settings.publicUrl}/v1/....`,
      );
    }
    process.stderr.write(`${lines.join("\n")}\n`);
    const stop = () => {
      process.stderr.write("Shutting down: letting refreshes in flight finish...\n");
      service.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });

  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    const code = isTokenwardenError(error) ? error.code : "internal_error";
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error ${code}: ${message}\n`);
    process.exitCode = 1;
  });
