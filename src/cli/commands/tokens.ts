import type { Command } from "commander";
import { invalidConfig } from "../../core/errors.js";
import { type GlobalFlags, withBackend } from "../context.js";
import { colour, printJson, relative, status, withSpinner } from "../output.js";
import { readStdin } from "../prompt.js";
import { collect, parsePairs } from "./options.js";

interface TokenFlags extends GlobalFlags {
  minTtl?: string;
}

interface CallFlags extends GlobalFlags {
  data?: string;
  header: string[];
  include?: boolean;
  fail?: boolean;
}

export function registerTokenCommands(program: Command): void {
  program
    .command("token <id>")
    .description("print a valid access token, and nothing else")
    .option("--min-ttl <seconds>", "the token must stay valid this long (default 10)")
    .addHelpText(
      "after",
      `
Examples:
  $ curl -H "Authorization: Bearer $(tokenwarden token acme-prod)" https://api.acme.example/v1/orders
  $ tokenwarden token acme-prod --json     # with tokenType, expiresAt, scope and the header to send`,
    )
    .action(async (id: string, _flags: TokenFlags, command: Command) => {
      const flags = command.optsWithGlobals<TokenFlags>();
      const minTtl = flags.minTtl === undefined ? undefined : Number(flags.minTtl);
      if (minTtl !== undefined && !(Number.isInteger(minTtl) && minTtl >= 0)) {
        throw invalidConfig("minTtl", "must be a whole number of seconds");
      }
      await withBackend(flags, async (api) => {
        const token = await api.getToken(id, minTtl === undefined ? {} : { minTtlSeconds: minTtl });
        if (flags.json === true) printJson(token);
        else process.stdout.write(`${token.accessToken}\n`);
      });
    });

  program
    .command("refresh <id>")
    .description("refresh the token now")
    .action(async (id: string, _flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withBackend(flags, async (api) => {
        const view = await withSpinner(`Refreshing ${id}...`, flags, () => api.refresh(id));
        if (flags.json === true) printJson(view);
        else
          process.stdout.write(
            `${id}: ${status(view.status)}, expires ${relative(view.expiresAt)}\n`,
          );
      });
    });

  program
    .command("revoke <id>")
    .description("revoke the tokens at the server (RFC 7009) and forget them")
    .action(async (id: string, _flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withBackend(flags, async (api) => {
        const view = await withSpinner(`Revoking ${id}...`, flags, () => api.revoke(id));
        if (flags.json === true) printJson(view);
        else process.stdout.write(`${id}: ${status(view.status)}\n`);
      });
    });

  program
    .command("call <id> <method> <path>")
    .description(
      "call the API with the token placed; one refresh and retry if the token is refused",
    )
    .option("-d, --data <body>", "request body (otherwise read from stdin when it is piped)")
    .option("-H, --header <name: value>", "request header (repeatable)", collect, [])
    .option("-i, --include", "print the status line and response headers first")
    .option("-f, --fail", "exit non-zero when the API answers 400 or more")
    .addHelpText(
      "after",
      `
Examples:
  $ tokenwarden call acme-prod GET /v1/orders
  $ echo '{"qty":2}' | tokenwarden call acme-prod POST /v1/orders -H 'content-type: application/json'`,
    )
    .action(
      async (id: string, method: string, path: string, _flags: CallFlags, command: Command) => {
        const flags = command.optsWithGlobals<CallFlags>();
        const headers = parsePairs(flags.header, "header", ":");
        const body =
          flags.data ??
          (["GET", "HEAD"].includes(method.toUpperCase()) ? undefined : await readStdin());
        await withBackend(flags, async (api) => {
          const res = await withSpinner(`${method.toUpperCase()} ${path}...`, flags, () =>
            api.call(id, {
              method: method.toUpperCase(),
              path,
              headers,
              ...(body === undefined ? {} : { body }),
            }),
          );
          const { text } = res;
          if (flags.json === true) {
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // not JSON: kept as text
            }
            printJson({
              status: res.status,
              headers: Object.fromEntries(res.headers),
              body: parsed,
            });
          } else {
            if (flags.include === true) {
              process.stdout.write(`HTTP ${res.status} ${res.statusText}\n`);
              for (const [name, value] of res.headers) process.stdout.write(`${name}: ${value}\n`);
              process.stdout.write("\n");
            } else if (res.status >= 400) {
              process.stderr.write(`${colour("red", `HTTP ${res.status}`, process.stderr)}\n`);
            }
            process.stdout.write(text.endsWith("\n") || text === "" ? text : `${text}\n`);
          }
          if (flags.fail === true && res.status >= 400) process.exitCode = 22; // as curl --fail
        });
      },
    );
}
