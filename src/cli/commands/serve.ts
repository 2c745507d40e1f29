import { type Command, Option } from "commander";
import { resolveSettings, type SettingFlags } from "../../config/settings.js";

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("run the service: REST API, OAuth redirect, proxy, admin page and scheduler")
    .addOption(
      new Option(
        "--host <host>",
        "address to listen on [env TOKENWARDEN_HOST] (default 127.0.0.1)",
      ),
    )
    .addOption(
      new Option("--port <port>", "port to listen on [env TOKENWARDEN_PORT] (default 4180)"),
    )
    .addOption(
      new Option(
        "--public-url <url>",
        "base of the redirect URL <public-url>/oauth/callback [env TOKENWARDEN_PUBLIC_URL]",
      ),
    )
    .addOption(
      new Option(
        "--hooks-dir <dir>",
        "folder that module refresh hooks set through the API must lie in [env TOKENWARDEN_HOOKS_DIR] (default: none, such hooks are refused)",
      ),
    )
    .addOption(
      new Option(
        "--log-level <level>",
        "fatal|error|warn|info|debug|trace|silent [env TOKENWARDEN_LOG_LEVEL]",
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
    )
    .action(async (_flags: SettingFlags, command: Command) => {
      const settings = resolveSettings(command.optsWithGlobals<SettingFlags>());
      // Loaded here, not at the top: the other commands start faster without the server.
      const { startService } = await import("../../service/serve.js");
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
          `Use it as "Authorization: Bearer <key>" for ${settings.publicUrl}/v1/...`,
        );
      }
      process.stderr.write(`${lines.join("\n")}\n`);
      const stop = () => {
        process.stderr.write("Shutting down: letting requests and refreshes in flight finish...\n");
        service.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
}
