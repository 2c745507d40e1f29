import { stripVTControlCharacters } from "node:util";
import type { Command } from "commander";
import { invalidConfig } from "../../core/errors.js";
import type { TokenEvent } from "../../core/events.js";
import { type GlobalFlags, withBackend } from "../context.js";
import { printJson, printTable, status } from "../output.js";

interface EventFlags extends GlobalFlags {
  limit: string;
  follow?: boolean;
}

const HEADERS = ["TIME", "TRIGGER", "ACTION", "OUTCOME", "HTTP", "ERROR", "MS"];
/** A followed stream cannot be measured first: the widths the columns can take. */
const WIDTHS = [24, 9, 9, 7, 4];

function line(cells: string[]): string {
  return cells
    .map((cell, i) =>
      cell.padEnd((WIDTHS[i] ?? 0) + cell.length - stripVTControlCharacters(cell).length),
    )
    .join("  ");
}

function row(e: TokenEvent): string[] {
  return [
    e.at,
    e.trigger,
    e.action,
    status(e.outcome),
    e.httpStatus === null ? "-" : String(e.httpStatus),
    e.errorCode === null
      ? "-"
      : `${e.errorCode}${e.errorDescription === null ? "" : `: ${e.errorDescription}`}`,
    String(e.durationMs),
  ];
}

export function registerEventsCommand(program: Command): void {
  program
    .command("events <id>")
    .description("the connection's history: every attempt, newest first (--follow: as it happens)")
    .option("--limit <n>", "how many", "20")
    .option(
      "-f, --follow",
      "print the last ones oldest first, then each new one as it happens, until Ctrl-C (under --json: one JSON object per line)",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ tokenwarden events acme-prod
  $ tokenwarden events acme-prod --follow --limit 5
  $ tokenwarden events acme-prod --follow --json | jq -c 'select(.outcome == "failure")'`,
    )
    .action(async (id: string, _flags: EventFlags, command: Command) => {
      const flags = command.optsWithGlobals<EventFlags>();
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500)
        throw invalidConfig("limit", "must be 1 to 500");
      await withBackend(flags, async (api) => {
        await api.getConnection(id);
        const events = await api.listEvents(id, { limit });
        if (flags.follow !== true) {
          if (flags.json === true) return printJson(events);
          return printTable(HEADERS, events.map(row));
        }
        await follow(flags, events.reverse(), (after, signal, onEvent) =>
          api.followEvents(id, { ...(after === undefined ? {} : { after }), signal }, onEvent),
        );
      });
    });
}

/**
 * The history oldest first, then each new event as one line: a table row, or a
 * JSON object per line under --json (so `jq` can read it as it comes). Ctrl-C (or
 * SIGTERM) ends it with status 0.
 */
async function follow(
  flags: EventFlags,
  history: TokenEvent[],
  run: (
    after: number | undefined,
    signal: AbortSignal,
    onEvent: (event: TokenEvent) => void,
  ) => Promise<void>,
): Promise<void> {
  const print = (event: TokenEvent) =>
    process.stdout.write(
      flags.json === true ? `${JSON.stringify(event)}\n` : `${line(row(event))}\n`,
    );
  if (flags.json !== true) process.stdout.write(`${line(HEADERS)}\n`);
  for (const event of history) print(event);
  const stop = new AbortController();
  const end = () => stop.abort();
  process.once("SIGINT", end);
  process.once("SIGTERM", end);
  try {
    await run(history.at(-1)?.id, stop.signal, print);
  } finally {
    process.off("SIGINT", end);
    process.off("SIGTERM", end);
  }
}
