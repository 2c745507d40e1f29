import type { Command } from "commander";
import { invalidConfig } from "../../core/errors.js";
import { type GlobalFlags, withTokenwarden } from "../context.js";
import { colour, printJson, printTable, relative, status } from "../output.js";
import { readStdin } from "../prompt.js";
import { collect, parsePairs } from "./options.js";

interface TokenFlags extends GlobalFlags {
  minTtl?: string;
}

interface EventFlags extends GlobalFlags {
  limit: string;
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
      await withTokenwarden(flags, async (tw) => {
        const token = await tw.getToken(id, minTtl === undefined ? {} : { minTtlSeconds: minTtl });
        if (flags.json === true) printJson(token);
        else process.stdout.write(`${token.accessToken}\n`);
      });
    });

  program
    .command("refresh <id>")
    .description("refresh the token now")
    .action(async (id: string, _flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withTokenwarden(flags, async (tw) => {
        const view = await tw.refresh(id);
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
      await withTokenwarden(flags, async (tw) => {
        const view = await tw.revoke(id);
        if (flags.json === true) printJson(view);
        else process.stdout.write(`${id}: ${status(view.status)}\n`);
      });
    });

  program
    .command("events <id>")
    .description("the connection's history: every attempt, newest first")
    .option("--limit <n>", "how many", "20")
    .action(async (id: string, _flags: EventFlags, command: Command) => {
      const flags = command.optsWithGlobals<EventFlags>();
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500)
        throw invalidConfig("limit", "must be 1 to 500");
      await withTokenwarden(flags, async (tw) => {
        await tw.getConnection(id);
        const events = await tw.listEvents(id, { limit });
        if (flags.json === true) return printJson(events);
        printTable(
          ["TIME", "TRIGGER", "ACTION", "OUTCOME", "HTTP", "ERROR", "MS"],
          events.map((e) => [
            e.at,
            e.trigger,
            e.action,
            status(e.outcome),
            e.httpStatus === null ? "-" : String(e.httpStatus),
            e.errorCode === null
              ? "-"
              : `${e.errorCode}${e.errorDescription === null ? "" : `: ${e.errorDescription}`}`,
            String(e.durationMs),
          ]),
        );
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
        await withTokenwarden(flags, async (tw) => {
          const res = await tw.fetch(id, path, {
            method: method.toUpperCase(),
            headers,
            ...(body === undefined ? {} : { body }),
          });
          const text = await res.text();
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
