/**
 * How the CLI speaks: tables and colour for people (colour only on a terminal, and
 * never with NO_COLOR), JSON for machines, and `error <code>: <message>` on stderr.
 */
import { stripVTControlCharacters, styleText } from "node:util";
import type { TokenwardenError } from "../core/errors.js";

export interface OutputOptions {
  json?: boolean;
}

type Style = Parameters<typeof styleText>[0];

export function colour(
  style: Style,
  text: string,
  stream: NodeJS.WriteStream = process.stdout,
): string {
  if (!stream.isTTY || process.env.NO_COLOR !== undefined || process.env.TERM === "dumb")
    return text;
  return styleText(style, text);
}

const STATUS_STYLE: Record<string, Style> = {
  active: "green",
  pending_authorization: "yellow",
  needs_reauth: "red",
  error: "red",
  revoked: "gray",
  success: "green",
  failure: "red",
};

export function status(text: string): string {
  return colour(STATUS_STYLE[text] ?? "reset", text);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Columns padded to their widest cell; colour codes do not count towards width. */
export function printTable(headers: string[], rows: string[][]): void {
  if (rows.length === 0) {
    process.stdout.write(`${colour("gray", "(none)")}\n`);
    return;
  }
  const visible = (s: string) => stripVTControlCharacters(s).length;
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? ""))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + " ".repeat((widths[i] ?? 0) - visible(c))))
      .join("  ")
      .trimEnd();
  process.stdout.write(`${colour("bold", line(headers))}\n`);
  for (const row of rows) process.stdout.write(`${line(row)}\n`);
}

/** `key: value` lines for one object, nested values as JSON. */
export function printFields(record: Record<string, unknown>): void {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  for (const [key, value] of Object.entries(record)) {
    if (value === undefined) continue;
    const text =
      typeof value === "string"
        ? value
        : value === null
          ? colour("gray", "-")
          : JSON.stringify(value);
    process.stdout.write(
      `${colour("bold", key.padEnd(width))}  ${key === "status" ? status(text) : text}\n`,
    );
  }
}

/** A relative time for people: `in 59m`, `3s ago`. */
export function relative(iso: string | null, now = Date.now()): string {
  if (iso === null) return "-";
  const delta = Date.parse(iso) - now;
  const abs = Math.abs(delta) / 1000;
  const text =
    abs < 60
      ? `${Math.round(abs)}s`
      : abs < 3600
        ? `${Math.round(abs / 60)}m`
        : abs < 86400
          ? `${Math.round(abs / 3600)}h`
          : `${Math.round(abs / 86400)}d`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

/**
 * A spinner on stderr while something slow is awaited: only when stderr is a terminal
 * and the output is for people. In a pipe, a log or under --json there is nothing.
 */
export function spinner(
  text: string,
  options: OutputOptions = {},
  stream: NodeJS.WriteStream = process.stderr,
): { stop(final?: string): void } {
  if (!stream.isTTY || options.json === true || process.env.TERM === "dumb") {
    return { stop: () => undefined };
  }
  const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  let i = 0;
  const draw = () => stream.write(`\r${frames[i++ % frames.length]} ${text}`);
  draw();
  const timer = setInterval(draw, 80);
  return {
    stop(final) {
      clearInterval(timer);
      stream.write(`\r\u001b[K${final === undefined ? "" : `${final}\n`}`);
    },
  };
}

/** `work` with a spinner saying `text` until it settles. */
export async function withSpinner<T>(
  text: string,
  options: OutputOptions,
  work: () => Promise<T>,
): Promise<T> {
  const progress = spinner(text, options);
  try {
    return await work();
  } finally {
    progress.stop();
  }
}

/**
 * A failure as `error <code>: <message>` (each further field problem on its own
 * line), or under --json as `{"error":{code,message,field?,...}}`, on stderr.
 */
export function printError(error: TokenwardenError, options: OutputOptions = {}): void {
  if (options.json === true) {
    const { status, ...rest } = error.toJSON();
    const body = status === undefined ? rest : { ...rest, upstreamStatus: status };
    process.stderr.write(`${JSON.stringify({ error: body })}\n`);
    return;
  }
  const more = (error.issues ?? []).slice(1).map((i) => `\n  ${i.field}: ${i.message}`);
  const first = more.length === 0 ? error.message : error.message.replace(/ \(and \d+ more\)$/, "");
  process.stderr.write(`error ${error.code}: ${first}${more.join("")}\n`);
}
