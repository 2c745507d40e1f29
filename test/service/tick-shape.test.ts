import { spawn } from "node:child_process";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * holdTickShape (src/service/tick-shape.ts), checked in V8 itself: a child process
 * (test/fixtures/tick-shape-child.ts) forces full GCs between ticks, then prints
 * `process.nextTick` with its feedback (%DebugPrint, --allow-natives-syntax). The
 * property slots of the tick's object literal are MONOMORPHIC while the optimised
 * nextTick builds the object inline, MEGAMORPHIC once it goes through V8's runtime.
 * The test runs on whatever Node runs vitest (CI: 20 and 22).
 */
interface Child {
  /** The states of the tick literal's property slots, in order. */
  slots: string[];
  /** What the held tick object is (own symbols' descriptions, the callback's type). */
  tick: { symbols: string[]; callback: string };
  /** A tick made after the GCs has the held one's map (only when one is held). */
  sameMap: boolean | undefined;
}

async function runChild(mode: "none" | "held" | "service"): Promise<Child> {
  // Its stdout goes to a file: V8 prints with C's stdio, which loses what does not fit
  // in a pipe that Node has made non-blocking.
  const dir = await mkdtemp(join(tmpdir(), "tokenwarden-tick-"));
  const file = await open(join(dir, "out"), "w+");
  let out: string;
  try {
    const child = spawn(
      process.execPath,
      [
        "--allow-natives-syntax",
        "--expose-gc",
        "--import",
        "tsx",
        "test/fixtures/tick-shape-child.ts",
        mode,
      ],
      { stdio: ["ignore", file.fd, "pipe"] },
    );
    let err = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    if (code !== 0) throw new Error(`child (${mode}) exited ${code}: ${err.slice(-2000)}`);
    out = await readFile(join(dir, "out"), "utf8");
  } finally {
    await file.close();
    await rm(dir, { recursive: true, force: true });
  }
  const slots = [...out.matchAll(/DefineKeyedOwnPropertyInLiteral (\w+)/g)].map((m) => m[1]);
  const tick = /^tick (.*)$/m.exec(out)?.[1];
  const sameMap = /^same-map (true|false)$/m.exec(out)?.[1];
  if (slots.length === 0 || tick === undefined)
    throw new Error(`child (${mode}) printed no feedback or tick: ${out.slice(0, 2000)}`);
  return {
    slots: slots as string[],
    tick: JSON.parse(tick) as Child["tick"],
    sameMap: sameMap === undefined ? undefined : sameMap === "true",
  };
}

// Node's tick literal: { [async_id_symbol], [trigger_async_id_symbol], (Node 22:
// [async_context_frame]), callback, args }. The first slot's map is the literal's own
// (kept by V8), so it stays MONOMORPHIC whatever happens.
const TICK_SYMBOLS = ["async_id_symbol", "trigger_async_id_symbol"];

describe("the nextTick object's shape across full GCs", () => {
  it("without a tick object alive, the literal's feedback goes megamorphic (what the hold prevents)", async () => {
    const { slots, tick } = await runChild("none");
    expect(tick.symbols).toEqual(expect.arrayContaining(TICK_SYMBOLS));
    expect(slots.slice(1)).toContain("MEGAMORPHIC");
  });

  it("holdTickShape holds Node's tick object, and the feedback stays monomorphic", async () => {
    const { slots, tick, sameMap } = await runChild("held");
    expect(tick.symbols).toEqual(expect.arrayContaining(TICK_SYMBOLS));
    expect(tick.callback).toBe("function");
    expect(sameMap).toBe(true);
    expect(slots.length).toBeGreaterThanOrEqual(4);
    expect(new Set(slots)).toEqual(new Set(["MONOMORPHIC"]));
  });

  it("startService holds one for the life of the service", async () => {
    const { slots, tick, sameMap } = await runChild("service");
    expect(tick.symbols).toEqual(expect.arrayContaining(TICK_SYMBOLS));
    expect(sameMap).toBe(true);
    expect(new Set(slots)).toEqual(new Set(["MONOMORPHIC"]));
  });
});
