/**
 * Asks for a secret on the terminal without echoing it. Only when stdin is a
 * terminal: a script gets no prompt, and a missing secret stays missing.
 */
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { invalidConfig } from "../core/errors.js";

export async function promptSecret(question: string): Promise<string | undefined> {
  if (!process.stdin.isTTY) return undefined;
  let muted = false;
  const output = new Writable({
    write(chunk, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  process.stderr.write(question);
  muted = true;
  const answer = await new Promise<string>((resolve) => rl.question("", resolve));
  rl.close();
  process.stderr.write("\n");
  return answer === "" ? undefined : answer;
}

/** Everything on stdin, when it is not a terminal (a piped body). */
export async function readStdin(): Promise<string | undefined> {
  if (process.stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export interface SecretSpec {
  /** The field it fills, as errors name it (`clientSecret`). */
  field: string;
  /** Its flag without dashes (`client-secret`); `--<flag>-stdin` reads it from stdin. */
  flag: string;
  /** The value given as `--<flag>`. */
  value: string | undefined;
  /** `--<flag>-stdin` was given. */
  fromStdin: boolean | undefined;
  /** Asked on a terminal when it is missing; left out: a missing secret stays missing. */
  question?: string;
  /** How else to leave it out on purpose, for the error without a terminal. */
  orElse?: string;
}

/**
 * A secret from `--<flag>`, from stdin with `--<flag>-stdin` (one trailing newline
 * dropped, as `echo` adds), or asked for on a terminal. Without a terminal a secret
 * that would be asked for is an error, never silently left out.
 */
export async function secretInput(spec: SecretSpec): Promise<string | undefined> {
  if (spec.fromStdin === true) {
    if (spec.value !== undefined)
      throw invalidConfig(spec.field, `give --${spec.flag} or --${spec.flag}-stdin, not both`);
    if (process.stdin.isTTY) return promptSecret(spec.question ?? `${spec.field}: `);
    const text = ((await readStdin()) ?? "").replace(/\r?\n$/, "");
    if (text === "") throw invalidConfig(spec.field, `--${spec.flag}-stdin: stdin was empty`);
    return text;
  }
  if (spec.value !== undefined || spec.question === undefined) return spec.value;
  if (process.stdin.isTTY) return promptSecret(spec.question);
  throw invalidConfig(
    spec.field,
    `not given, and stdin is not a terminal to ask on: pipe it with --${spec.flag}-stdin, or give --${spec.flag}${spec.orElse === undefined ? "" : `, or ${spec.orElse}`}`,
  );
}

/** stdin holds one value: two flags cannot both read it. `flags`: flag name to given. */
export function oneStdinFlag(flags: Record<string, boolean | undefined>): void {
  const given = Object.keys(flags).filter((name) => flags[name] === true);
  if (given.length > 1) {
    throw invalidConfig(
      "stdin",
      `only one secret can be read from stdin; given ${given.join(" and ")}`,
    );
  }
}
