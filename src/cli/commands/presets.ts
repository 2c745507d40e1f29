/**
 * `tokenwarden presets [name]`: on this machine, the catalogue shipped in the package
 * (no database and no master key needed: it reads only the package's own data);
 * through a service (TOKENWARDEN_URL), the service's, which is the one its
 * `integration add --preset` resolves against, whatever version this CLI is.
 */
import type { Command } from "commander";
import { TokenwardenError } from "../../core/errors.js";
import { PRESETS, presetEntry } from "../../presets/catalogue.js";
import { type GlobalFlags, remoteBackendOf } from "../context.js";
import { printJson, printTable } from "../output.js";

export function registerPresetsCommand(program: Command): void {
  program
    .command("presets [name]")
    .description('list the provider presets (preset: "<name>" in an integration), or show one')
    .addHelpText(
      "after",
      `
Examples:
  $ tokenwarden presets
  $ tokenwarden presets github --json
  $ tokenwarden integration add gh --preset github --client-id Iv1.abc`,
    )
    .action(async (name: string | undefined, _flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      const service = remoteBackendOf(flags);
      // One listing either way, then the same lookup: the same answer for any name.
      const entries =
        service === undefined ? PRESETS.map(presetEntry) : await service.listPresets();
      if (name !== undefined) {
        const entry = entries.find((e) => e.name === name);
        if (entry === undefined)
          throw new TokenwardenError("not_found", `preset ${name} does not exist`);
        if (flags.json === true) return printJson(entry);
        const { notes, quirks, ...fields } = entry;
        process.stdout.write(`${JSON.stringify(fields, null, 2)}\n`);
        for (const note of notes) process.stdout.write(`- ${note}\n`);
        return;
      }
      if (flags.json === true) return printJson(entries);
      printTable(
        ["NAME", "PROVIDER", "GRANT", "DOCS"],
        entries.map((e) => [e.name, e.displayName, String(e.grantType ?? "-"), e.docsUrl]),
      );
    });
}
