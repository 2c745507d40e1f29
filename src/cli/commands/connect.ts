import type { Command } from "commander";
import { settingOption } from "../../config/settings.js";
import { invalidConfig } from "../../core/errors.js";
import { type GlobalFlags, withTokenwarden } from "../context.js";
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
      "where the page goes afterwards (TOKENWARDEN_CONNECT_RETURN_ORIGINS)",
    )
    .addOption(settingOption("publicUrl"))
    .action(async (id: string, _flags: ConnectFlags, command: Command) => {
      const flags = command.optsWithGlobals<ConnectFlags>();
      const expires = Number(flags.expires);
      if (!Number.isInteger(expires))
        throw invalidConfig("expires", "must be a whole number of seconds");
      await withTokenwarden(flags, async (tw, settings) => {
        const session = await tw.connectSessions.create(
          {
            connectionId: id,
            expiresInSeconds: expires,
            ...(flags.returnUrl === undefined ? {} : { returnUrl: flags.returnUrl }),
          },
          { returnOrigins: settings.connectReturnOrigins },
        );
        const url = `${settings.publicUrl}/connect/${session.token}`;
        if (flags.json === true) printJson({ url, expiresAt: session.expiresAt, connectionId: id });
        else process.stdout.write(`${url}\n(single use, until ${session.expiresAt})\n`);
      });
    });
}
