import type { Command } from "commander";
import { type GlobalFlags, withBackend } from "../context.js";
import { printJson, printTable } from "../output.js";
import { collect } from "./options.js";

interface CreateFlags extends GlobalFlags {
  name: string;
  role: string;
  integration: string[];
  environment: string[];
}

function describeLimits(key: { integrations: string[] | null; environments: string[] | null }) {
  const parts: string[] = [];
  if (key.integrations !== null) parts.push(`integrations ${key.integrations.join(",")}`);
  if (key.environments !== null) parts.push(`environments ${key.environments.join(",")}`);
  return parts.length === 0 ? "-" : parts.join("; ");
}

export function registerApiKeyCommands(program: Command): void {
  const apikey = program
    .command("apikey")
    .description("manage the service's API keys (stored as hashes)");

  apikey
    .command("create")
    .description("create an API key; it is printed once and never stored")
    .option("--name <name>", "what it is for", "cli")
    .option(
      "--role <role>",
      "admin (everything) or client (read tokens, connections and events; use the proxy)",
      "admin",
    )
    .option(
      "--integration <key>",
      "a client key only for this integration's connections (repeatable)",
      collect,
      [],
    )
    .option(
      "--environment <name>",
      "a client key only for connections of this environment (repeatable)",
      collect,
      [],
    )
    .addHelpText(
      "after",
      "\nExamples:\n  $ tokenwarden apikey create --name ci-pipeline\n  $ tokenwarden apikey create --name orders-job --role client --integration acme --environment prod",
    )
    .action(async (_flags: CreateFlags, command: Command) => {
      const flags = command.optsWithGlobals<CreateFlags>();
      await withBackend(flags, async (api) => {
        const created = await api.apiKeys.create({
          name: flags.name,
          role: flags.role,
          integrations: flags.integration,
          environments: flags.environment,
        });
        if (flags.json === true) printJson(created);
        else {
          process.stderr.write(
            `API key ${created.id} (${created.name}, ${created.role}) created. It is shown only now:\n`,
          );
          process.stdout.write(`${created.key}\n`);
        }
      });
    });

  apikey
    .command("list")
    .description("list API keys (ids, names, roles, limits; the keys themselves are not kept)")
    .action(async (_flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withBackend(flags, async (api) => {
        const keys = await api.apiKeys.list();
        if (flags.json === true) printJson(keys);
        else
          printTable(
            ["ID", "NAME", "ROLE", "LIMITS", "CREATED"],
            keys.map((k) => [k.id, k.name, k.role, describeLimits(k), k.createdAt]),
          );
      });
    });

  apikey
    .command("rm <id>")
    .description("delete an API key")
    .action(async (id: string, _flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withBackend(flags, async (api) => {
        await api.apiKeys.delete(id);
        if (flags.json === true) printJson({ deleted: id });
        else process.stdout.write(`API key ${id} deleted\n`);
      });
    });
}
