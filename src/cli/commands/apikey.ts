import type { Command } from "commander";
import { TokenwardenError } from "../../core/errors.js";
import { generateApiKey } from "../../service/api-keys.js";
import { type GlobalFlags, withTokenwarden } from "../context.js";
import { printJson, printTable } from "../output.js";

interface CreateFlags extends GlobalFlags {
  name: string;
}

export function registerApiKeyCommands(program: Command): void {
  const apikey = program
    .command("apikey")
    .description("manage the service's API keys (stored as hashes)");

  apikey
    .command("create")
    .description("create an API key; it is printed once and never stored")
    .option("--name <name>", "what it is for", "cli")
    .addHelpText("after", "\nExample:\n  $ tokenwarden apikey create --name ci-pipeline")
    .action(async (_flags: CreateFlags, command: Command) => {
      const flags = command.optsWithGlobals<CreateFlags>();
      await withTokenwarden(flags, async (tw) => {
        const created = generateApiKey(flags.name);
        await tw.store.createApiKey(
          { id: created.id, name: created.name, hash: created.hash },
          Date.now(),
        );
        if (flags.json === true)
          printJson({ id: created.id, name: created.name, key: created.key });
        else {
          process.stderr.write(
            `API key ${created.id} (${created.name}) created. It is shown only now:\n`,
          );
          process.stdout.write(`${created.key}\n`);
        }
      });
    });

  apikey
    .command("list")
    .description("list API keys (ids and names; the keys themselves are not kept)")
    .action(async (_flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withTokenwarden(flags, async (tw) => {
        const keys = (await tw.store.listApiKeys()).map((k) => ({
          id: k.id,
          name: k.name,
          createdAt: new Date(k.createdAt).toISOString(),
        }));
        if (flags.json === true) printJson(keys);
        else
          printTable(
            ["ID", "NAME", "CREATED"],
            keys.map((k) => [k.id, k.name, k.createdAt]),
          );
      });
    });

  apikey
    .command("rm <id>")
    .description("delete an API key")
    .action(async (id: string, _flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withTokenwarden(flags, async (tw) => {
        if (!(await tw.store.deleteApiKey(id)))
          throw new TokenwardenError("not_found", `API key ${id} does not exist`);
        if (flags.json === true) printJson({ deleted: id });
        else process.stdout.write(`API key ${id} deleted\n`);
      });
    });
}
