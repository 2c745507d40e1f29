import type { Command } from "commander";
import { CONNECTION_STATUSES } from "../../core/connection.js";
import { invalidConfig, TokenwardenError } from "../../core/errors.js";
import { type GlobalFlags, withBackend } from "../context.js";
import { printFields, printJson, printTable, relative, status } from "../output.js";
import { oneStdinFlag, secretInput } from "../prompt.js";
import { defined } from "./integration.js";
import { collect, parsePairs } from "./options.js";

interface AddFlags extends GlobalFlags {
  integration: string;
  environment?: string;
  param: string[];
  clientId?: string;
  clientSecret?: string;
  clientSecretStdin?: boolean;
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  refreshToken?: string;
  refreshTokenStdin?: boolean;
  replace?: boolean;
}

interface ListFlags extends GlobalFlags {
  integration?: string;
  status?: string;
  environment?: string;
}

export function registerConnectionCommands(program: Command): void {
  const connection = program
    .command("connection")
    .description("manage connections (connected accounts)");

  connection
    .command("add <id>")
    .description("add a connection to an integration (--replace to overwrite one)")
    .requiredOption("--integration <key>", "the integration it belongs to")
    .option("--environment <label>", "a free label: dev, qa, prod...")
    .option(
      "--param <name=value>",
      "a value for one of the integration's parameters (repeatable)",
      collect,
      [],
    )
    .option("--client-id <id>", "override the integration's client id")
    .option("--client-secret <secret>", "override the integration's client secret")
    .option("--client-secret-stdin", "read that client secret from stdin")
    .option("--username <name>", "resource owner (password grant)")
    .option(
      "--password <password>",
      "resource owner's password (prompted on a terminal when left out)",
    )
    .option("--password-stdin", "read the password from stdin")
    .option(
      "--refresh-token <token>",
      "the refresh token to start from (refresh_token grant; prompted when left out)",
    )
    .option("--refresh-token-stdin", "read the refresh token from stdin")
    .option("--replace", "overwrite an existing connection of that id")
    .addHelpText(
      "after",
      `
Examples:
  $ tokenwarden connection add acme-prod --integration acme --environment prod
  $ tokenwarden connection add crm-eu --integration crm --param region=eu
  $ tokenwarden connection add legacy --integration legacy-api --username svc-user   # password prompted
  $ printf '%s' "$SVC_PASSWORD" | tokenwarden connection add legacy --integration legacy-api \\
      --username svc-user --password-stdin

Secrets given as flags are visible to other users in the process list: in scripts,
prefer the --*-stdin flags (one per command: stdin holds one value).`,
    )
    .action(async (id: string, _flags: AddFlags, command: Command) => {
      const flags = command.optsWithGlobals<AddFlags>();
      oneStdinFlag({
        "--client-secret-stdin": flags.clientSecretStdin,
        "--password-stdin": flags.passwordStdin,
        "--refresh-token-stdin": flags.refreshTokenStdin,
      });
      await withBackend(flags, async (api) => {
        if (flags.replace !== true && (await api.findConnection(id)) !== undefined) {
          throw new TokenwardenError(
            "conflict",
            `connection ${id} exists; add --replace to overwrite it`,
            {
              field: "id",
            },
          );
        }
        const input: Record<string, unknown> = {
          id,
          integration: flags.integration,
          ...defined({
            environment: flags.environment,
            clientId: flags.clientId,
            username: flags.username,
          }),
          ...(flags.param.length > 0 ? { parameters: parsePairs(flags.param, "param") } : {}),
        };
        const grantType = (await api.findIntegration(flags.integration))?.grantType;
        const secrets = {
          clientSecret: await secretInput({
            field: "clientSecret",
            flag: "client-secret",
            value: flags.clientSecret,
            fromStdin: flags.clientSecretStdin,
          }),
          password: await secretInput({
            field: "password",
            flag: "password",
            value: flags.password,
            fromStdin: flags.passwordStdin,
            ...(grantType === "password"
              ? { question: `Password for ${flags.username ?? "the resource owner"}: ` }
              : {}),
          }),
          refreshToken: await secretInput({
            field: "refreshToken",
            flag: "refresh-token",
            value: flags.refreshToken,
            fromStdin: flags.refreshTokenStdin,
            ...(grantType === "refresh_token" ? { question: "Refresh token: " } : {}),
          }),
        };
        Object.assign(input, defined(secrets));
        const view = await api.putConnection(input);
        if (flags.json === true) printJson(view);
        else process.stdout.write(`connection ${view.id} saved (${status(view.status)})\n`);
      });
    });

  connection
    .command("list")
    .description("list connections")
    .option("--integration <key>", "only this integration's")
    .option("--status <status>", "only in this status")
    .option("--environment <label>", "only in this environment")
    .action(async (_flags: ListFlags, command: Command) => {
      const flags = command.optsWithGlobals<ListFlags>();
      if (
        flags.status !== undefined &&
        !(CONNECTION_STATUSES as readonly string[]).includes(flags.status)
      ) {
        throw invalidConfig("status", `must be one of ${CONNECTION_STATUSES.join(", ")}`);
      }
      await withBackend(flags, async (api) => {
        const all = await api.listConnections(
          defined({
            integration: flags.integration,
            status: flags.status,
            environment: flags.environment,
          }),
        );
        if (flags.json === true) return printJson(all);
        printTable(
          ["ID", "INTEGRATION", "ENVIRONMENT", "STATUS", "EXPIRES", "LAST ERROR"],
          all.map((c) => [
            c.id,
            c.integration,
            c.environment || "-",
            status(c.status),
            relative(c.expiresAt),
            c.lastError?.message ?? "-",
          ]),
        );
      });
    });

  connection
    .command("show <id>")
    .description("show a connection and its state (secrets only as set)")
    .action(async (id: string, _flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withBackend(flags, async (api) => {
        const view = await api.getConnection(id);
        if (flags.json === true) return printJson(view);
        printFields({
          ...view,
          clientSecret: view.clientSecret.set ? "set" : "not set",
          password: view.password.set ? "set" : "not set",
          refreshToken: view.refreshToken.set ? "set" : "not set",
          expiresAt:
            view.expiresAt === null ? null : `${view.expiresAt} (${relative(view.expiresAt)})`,
        });
      });
    });

  connection
    .command("rm <id>")
    .description(
      "delete a connection (its tokens are forgotten, not revoked: revoke first if you want that)",
    )
    .action(async (id: string, _flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withBackend(flags, async (api) => {
        await api.deleteConnection(id);
        if (flags.json === true) printJson({ deleted: id });
        else process.stdout.write(`connection ${id} deleted\n`);
      });
    });
}
