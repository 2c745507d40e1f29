import type { Command } from "commander";
import { generateMasterKey } from "../../store/crypto.js";
import type { RotationReport } from "../../store/rotation.js";
import { type GlobalFlags, withTokenwarden } from "../context.js";
import { printJson } from "../output.js";

/** `tokenwarden key generate | rotate`: the master key that seals secrets at rest (SECURITY.md). */
export function registerKeyCommands(program: Command): void {
  const key = program.command("key").description("the master key that seals secrets at rest");

  key
    .command("generate")
    .description("print a new random master key (32 bytes, base64); nothing is stored")
    .addHelpText(
      "after",
      "\nExample:\n  $ export TOKENWARDEN_SECRET_KEY=$(tokenwarden key generate)",
    )
    .action((_flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      const generated = generateMasterKey();
      if (flags.json === true) printJson({ key: generated });
      else process.stdout.write(`${generated}\n`);
    });

  key
    .command("rotate")
    .description(
      "re-seal every stored secret under TOKENWARDEN_SECRET_KEY, in one transaction; old keys come from TOKENWARDEN_PREVIOUS_SECRET_KEYS",
    )
    .addHelpText(
      "after",
      `
Example:
  $ TOKENWARDEN_PREVIOUS_SECRET_KEYS=$OLD TOKENWARDEN_SECRET_KEY=$NEW tokenwarden key rotate

Give every running process the new key (with the old one as previous) first; after
the rotation the old key can be dropped from the environment.`,
    )
    .action(async (_flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      // The master key never leaves the machines that hold it: no route rotates it.
      await withTokenwarden(flags, async (tw) => {
        const report = await tw.rotateKeys();
        if (flags.json === true) printJson(report);
        else process.stdout.write(rotationText(report));
      });
    });
}

/** Each kind of sealed value the rotation counted, in the report's order, 0 included. */
const COUNTED: ReadonlyArray<[keyof Omit<RotationReport, "keyId">, string]> = [
  ["integrations", "integrations"],
  ["connectionSecrets", "connection secret sets"],
  ["tokens", "token sets"],
  ["pendingAuthorizations", "pending authorizations (PKCE verifiers)"],
  ["deviceAuthorizations", "device authorizations (device codes)"],
  ["webhookSecrets", "webhook signing secrets"],
  ["mcpClientSecrets", "MCP client secrets"],
];

function rotationText(report: RotationReport): string {
  const width = Math.max(...COUNTED.map(([field]) => String(report[field]).length));
  const lines = COUNTED.map(
    ([field, label]) => `  ${String(report[field]).padStart(width)} ${label}\n`,
  );
  return `re-sealed under key ${report.keyId}:\n${lines.join("")}`;
}
