import type { Command } from "commander";
import { settingOption } from "../../config/settings.js";
import { invalidConfig } from "../../core/errors.js";
import { type GlobalFlags, withBackend } from "../context.js";
import { printJson } from "../output.js";

interface ConnectFlags extends GlobalFlags {
  expires: string;
  returnUrl?: string;
}

/**
 * `connect <id>`: a connect link for the person who must authorize an existing
 * connection again (one that needs_reauth), to send them; it needs no API key. The
 * link's base is `--public-url` / TOKENWARDEN_PUBLIC_URL, where the service listens.
 */
export function registerConnectCommand(program: Command): void {
  program
    .command("connect <id>")
    .description("make a single-use connect link to re-authorize a connection")
    .option("--expires <seconds>", "how long the link works", "3600")
    .option(
      "--return-url <url>",
      "where the page goes afterwards (on an origin of TOKENWARDEN_CONNECT_RETURN_ORIGINS)",
    )
    .addOption(settingOption("publicUrl"))
    .addHelpText(
      "after",
      "\nThrough a service (TOKENWARDEN_URL) the link is on the service's own public URL and\nreturn origins; --public-url is then not used.",
    )
    .action(async (id: string, _flags: ConnectFlags, command: Command) => {
      const flags = command.optsWithGlobals<ConnectFlags>();
      const expires = Number(flags.expires);
      if (!Number.isInteger(expires))
        throw invalidConfig("expires", "must be a whole number of seconds");
      await withBackend(flags, async (api) => {
        const link = await api.createConnectLink({
          connectionId: id,
          expiresInSeconds: expires,
          ...(flags.returnUrl === undefined ? {} : { returnUrl: flags.returnUrl }),
        });
        if (flags.json === true) printJson(link);
        else process.stdout.write(`${link.url}\n(single use, until ${link.expiresAt})\n`);
      });
    });
}
