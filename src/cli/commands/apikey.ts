import type { Command } from "commander";
import { invalidConfig, TokenwardenError } from "../../core/errors.js";
import { ID_PATTERN } from "../../core/integration.js";
import { generateApiKey } from "../../service/api-keys.js";
import type { ApiKeyRole, NewStoredApiKey } from "../../store/store.js";
import { type GlobalFlags, withTokenwarden } from "../context.js";
import { printJson, printTable } from "../output.js";
import { collect } from "./options.js";

interface CreateFlags extends GlobalFlags {
  name: string;
  role: string;
  integration: string[];
  environment: string[];
}

/** The key to store, from the flags: limits only on a client key, and well formed. */
function keyToStore(flags: CreateFlags, created: { id: string; hash: string }): NewStoredApiKey {
  if (flags.role !== "admin" && flags.role !== "client")
    throw invalidConfig("role", "must be admin or client");
  const role: ApiKeyRole = flags.role;
  const limited = flags.integration.length > 0 || flags.environment.length > 0;
  if (role === "admin" && limited) {
    throw invalidConfig(
      "role",
      "an admin key has no limits: use --role client with --integration or --environment",
    );
  }
  for (const key of flags.integration) {
    if (!ID_PATTERN.test(key))
      throw invalidConfig("integration", `${key} is not an integration key`);
  }
  for (const environment of flags.environment) {
    if (environment.length > 64) throw invalidConfig("environment", "is at most 64 characters");
  }
  return {
    id: created.id,
    name: flags.name,
    hash: created.hash,
    role,
    integrations: flags.integration.length > 0 ? flags.integration : null,
    environments: flags.environment.length > 0 ? flags.environment : null,
  };
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
      const created = generateApiKey(flags.name);
      const stored = keyToStore(flags, created);
      await withTokenwarden(flags, async (tw) => {
        await tw.store.createApiKey(stored, Date.now());
        if (flags.json === true)
          printJson({
            id: created.id,
            name: created.name,
            role: stored.role,
            integrations: stored.integrations,
            environments: stored.environments,
            key: created.key,
          });
        else {
          process.stderr.write(
            `API key ${created.id} (${created.name}, ${stored.role}) created. It is shown only now:\n`,
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
      await withTokenwarden(flags, async (tw) => {
        const keys = (await tw.store.listApiKeys()).map((k) => ({
          id: k.id,
          name: k.name,
          role: k.role,
          integrations: k.integrations,
          environments: k.environments,
          createdAt: new Date(k.createdAt).toISOString(),
        }));
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
      await withTokenwarden(flags, async (tw) => {
        if (!(await tw.store.deleteApiKey(id)))
          throw new TokenwardenError("not_found", `API key ${id} does not exist`);
        if (flags.json === true) printJson({ deleted: id });
        else process.stdout.write(`API key ${id} deleted\n`);
      });
    });
}
