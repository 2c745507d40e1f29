import type { Command } from "commander";
import {
  addSettingOptions,
  resolveSettings,
  SERVICE_SETTINGS,
  type SettingFlags,
} from "../../config/settings.js";
import { type GlobalFlags, refuseRemote } from "../context.js";

export function registerServeCommand(program: Command): void {
  const serve = program
    .command("serve")
    .description("run the service: REST API, OAuth redirect, proxy, admin page and scheduler");
  addSettingOptions(serve, SERVICE_SETTINGS)
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
      const flags = command.optsWithGlobals<GlobalFlags>();
      refuseRemote(flags, "runs the service itself");
      const settings = resolveSettings(flags);
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
