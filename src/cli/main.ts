#!/usr/bin/env node
/**
 * The `tokenwarden` command. Until the service and the full CLI land it does two
 * things: print its help, and `validate` a JSON file of integrations and connections
 * the way the service will (every problem named by field).
 */
import { readFile } from "node:fs/promises";
import { isTokenwardenError } from "../core/errors.js";
import { parseConnection, parseIntegration, resolveIntegration } from "../core/index.js";

const HELP = `tokenwarden - keeps OAuth 2.0 access tokens valid for your API calls

Usage:
  tokenwarden validate <file.json>   check integrations and connections, naming each bad field
  tokenwarden --help | --version

Example file:
  { "integrations": [{ "key": "acme", "grantType": "client_credentials",
                       "tokenUrl": "https://auth.acme.example/oauth/token", "clientId": "app" }],
    "connections":  [{ "id": "acme-prod", "integration": "acme", "environment": "prod" }] }

The service (tokenwarden serve) and the other commands are being built: see README.md.`;

async function validate(path: string): Promise<void> {
  const doc: unknown = JSON.parse(await readFile(path, "utf8"));
  const record = (doc ?? {}) as { integrations?: unknown[]; connections?: unknown[] };
  const integrations = new Map(
    (record.integrations ?? []).map((i) => {
      const parsed = parseIntegration(i);
      return [parsed.key, parsed] as const;
    }),
  );
  for (const raw of record.connections ?? []) {
    const connection = parseConnection(raw);
    const integration = integrations.get(connection.integration);
    if (integration === undefined)
      throw new Error(`connection ${connection.id}: unknown integration ${connection.integration}`);
    resolveIntegration(integration, connection);
  }
  process.stdout.write(
    `ok: ${integrations.size} integration(s), ${(record.connections ?? []).length} connection(s)\n`,
  );
}

async function main(argv: string[]): Promise<number> {
  const [command, arg] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (command === "--version") {
    process.stdout.write("0.1.0\n");
    return 0;
  }
  if (command === "validate" && arg !== undefined) {
    await validate(arg);
    return 0;
  }
  process.stderr.write(`error invalid_config: unknown command ${command}\n${HELP}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const code = isTokenwardenError(error) ? error.code : "invalid_config";
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error ${code}: ${message}\n`);
    process.exitCode = 1;
  },
);
