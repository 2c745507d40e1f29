import type { Command } from "commander";
import { loadDeclarativeFile } from "../../config/declarative.js";
import { TokenwardenError } from "../../core/errors.js";
import { type GlobalFlags, withBackend } from "../context.js";
import { printFields, printJson, printTable } from "../output.js";
import { secretInput } from "../prompt.js";
import { collect, parseAssignments } from "./options.js";

interface AddFlags extends GlobalFlags {
  grantType?: string;
  preset?: string;
  discoveryUrl?: string;
  mcpServerUrl?: string;
  tokenUrl?: string;
  authorizationUrl?: string;
  revocationUrl?: string;
  clientId?: string;
  clientSecret?: string | false;
  clientSecretStdin?: boolean;
  clientAuth?: string;
  tokenMethod?: string;
  scopes?: string;
  apiBaseUrl?: string;
  displayName?: string;
  parameter: string[];
  set: string[];
  replace?: boolean;
}

export function registerIntegrationCommands(program: Command): void {
  const integration = program
    .command("integration")
    .description("manage integrations (how to talk to one server)");

  integration
    .command("add <key>")
    .description("add an integration (--replace to overwrite one)")
    .option(
      "--grant-type <type>",
      "authorization_code | client_credentials | password | refresh_token (a preset gives one)",
    )
    .option("--preset <name>", "start from a provider preset (tokenwarden presets)")
    .option("--discovery-url <url>", "issuer or metadata URL (RFC 8414 / OpenID Connect)")
    .option(
      "--mcp-server-url <url>",
      "a remote MCP server: its RFC 9728 metadata names the authorization server; no client id: one is registered",
    )
    .option("--token-url <url>", "token endpoint")
    .option("--authorization-url <url>", "authorization endpoint (authorization_code)")
    .option("--revocation-url <url>", "RFC 7009 revocation endpoint")
    .option("--client-id <id>", "OAuth client id")
    .option(
      "--client-secret <secret>",
      "OAuth client secret (prompted on a terminal when left out; visible to other users in the process list: prefer --client-secret-stdin)",
    )
    .option("--client-secret-stdin", "read the client secret from stdin")
    .option("--no-client-secret", "a public client: no client secret, none asked for")
    .option(
      "--client-auth <method>",
      "basic | basic_raw | body | query | auto | client_secret_jwt | private_key_jwt | tls_client_auth | none",
    )
    .option("--token-method <verb>", "POST | GET")
    .option("--scopes <scopes>", "scopes, separated by spaces or commas")
    .option("--api-base-url <url>", "base URL of the API, for call and the proxy")
    .option("--display-name <name>", "name shown to people")
    .option("--parameter <name>", "a {name} usable in any string field (repeatable)", collect, [])
    .option(
      "--set <field=value>",
      "any other field; the value is read as JSON when it parses (repeatable)",
      collect,
      [],
    )
    .option("--replace", "overwrite an existing integration of that key")
    .addHelpText(
      "after",
      `
Examples:
  $ tokenwarden integration add acme --grant-type client_credentials \\
      --token-url https://auth.acme.example/oauth/token --client-id my-app --scopes orders.read
  $ vault kv get -field=secret kv/acme | tokenwarden integration add acme --grant-type client_credentials \\
      --token-url https://auth.acme.example/oauth/token --client-id my-app --client-secret-stdin
  $ tokenwarden integration add crm --grant-type authorization_code \\
      --authorization-url https://{region}.crm.example/authorize --token-url https://{region}.crm.example/token \\
      --parameter region --client-id app --set 'tokenPlacement={"in":"query","name":"access_token"}'
  $ tokenwarden integration add docs-mcp --mcp-server-url https://mcp.example.com/mcp`,
    )
    .action(async (key: string, _flags: AddFlags, command: Command) => {
      const flags = command.optsWithGlobals<AddFlags>();
      await withBackend(flags, async (api) => {
        if (flags.replace !== true && (await api.findIntegration(key)) !== undefined) {
          throw new TokenwardenError(
            "conflict",
            `integration ${key} exists; add --replace to overwrite it`,
            {
              field: "key",
            },
          );
        }
        const input: Record<string, unknown> = {
          key,
          ...defined({
            grantType: flags.grantType,
            preset: flags.preset,
            discoveryUrl: flags.discoveryUrl,
            mcpServerUrl: flags.mcpServerUrl,
            tokenUrl: flags.tokenUrl,
            authorizationUrl: flags.authorizationUrl,
            revocationUrl: flags.revocationUrl,
            clientId: flags.clientId,
            clientAuth: flags.clientAuth,
            tokenMethod: flags.tokenMethod,
            scopes: flags.scopes,
            apiBaseUrl: flags.apiBaseUrl,
            displayName: flags.displayName,
          }),
          ...(flags.parameter.length > 0 ? { parameters: flags.parameter } : {}),
          ...parseAssignments(flags.set, "set"),
        };
        if (flags.clientSecret === false) input.clientSecret = null;
        else {
          const secret = await secretInput({
            field: "clientSecret",
            flag: "client-secret",
            value: flags.clientSecret,
            fromStdin: flags.clientSecretStdin,
            // Asked only when a client id is given here and no --set gives the secret.
            ...(flags.clientId !== undefined && input.clientSecret === undefined
              ? { question: `Client secret for ${key} (empty for a public client): ` }
              : {}),
            orElse: "--no-client-secret for a public client",
          });
          if (secret !== undefined) input.clientSecret = secret;
        }
        const view = await api.putIntegration(input);
        if (flags.json === true) printJson(view);
        else process.stdout.write(`integration ${view.key} saved\n`);
      });
    });

  integration
    .command("list")
    .description("list integrations")
    .action(async (_flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withBackend(flags, async (api) => {
        const all = await api.listIntegrations();
        if (flags.json === true) return printJson(all);
        printTable(
          ["KEY", "GRANT", "TOKEN URL", "CLIENT SECRET"],
          all.map((i) => [
            i.key,
            i.grantType,
            i.tokenUrl ?? i.discoveryUrl ?? i.mcpServerUrl ?? "-",
            i.clientSecret.set ? "set" : "-",
          ]),
        );
      });
    });

  integration
    .command("show <key>")
    .description("show an integration (secrets only as set)")
    .action(async (key: string, _flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withBackend(flags, async (api) => {
        const view = await api.getIntegration(key);
        if (flags.json === true) printJson(view);
        else printFields({ ...view, clientSecret: view.clientSecret.set ? "set" : "not set" });
      });
    });

  integration
    .command("rm <key>")
    .description("delete an integration no connection uses")
    .action(async (key: string, _flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withBackend(flags, async (api) => {
        await api.deleteIntegration(key);
        if (flags.json === true) printJson({ deleted: key });
        else process.stdout.write(`integration ${key} deleted\n`);
      });
    });

  integration
    .command("import <files...>")
    .description(
      "upsert the integrations and connections of YAML or JSON files (the --config shape)",
    )
    .addHelpText(
      "after",
      "\nExample:\n  $ ACME_CLIENT_SECRET=... tokenwarden integration import tokenwarden.yaml",
    )
    .action(async (files: string[], _flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withBackend(flags, async (api) => {
        // Every file is read and checked before any is written.
        const configs = await Promise.all(files.map((f) => loadDeclarativeFile(f)));
        const merged = {
          integrations: configs.flatMap((c) => c.integrations),
          connections: configs.flatMap((c) => c.connections),
        };
        const counts = await api.applyDeclarative(merged);
        if (flags.json === true) printJson(counts);
        else
          process.stdout.write(
            `imported ${counts.integrations} integration(s), ${counts.connections} connection(s)\n`,
          );
      });
    });
}

export function defined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined));
}
