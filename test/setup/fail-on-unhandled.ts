import { afterAll, afterEach } from "vitest";

/**
 * An unhandled rejection or uncaught exception fails the test during which it
 * surfaced (or the file, if it surfaces after the last test), instead of being
 * reported beside a green run: a promise nobody awaits is a bug, and in the service it
 * would end the process.
 */
const seen: unknown[] = [];
const record = (error: unknown) => {
  seen.push(error);
};
process.on("unhandledRejection", record);
process.on("uncaughtException", record);

function failIfSeen(when: string): void {
  if (seen.length === 0) return;
  const errors = seen.splice(0);
  const first = errors[0] instanceof Error ? errors[0].message : String(errors[0]);
  throw new AggregateError(
    errors,
    `${errors.length} unhandled rejection(s) or uncaught exception(s) ${when}: ${first}`,
  );
}

afterEach(async () => {
  // Rejections are reported after the microtask queue drains: let them arrive.
  await new Promise((resolve) => setImmediate(resolve));
  failIfSeen("during this test");
});

afterAll(async () => {
  await new Promise((resolve) => setImmediate(resolve));
  process.off("unhandledRejection", record);
  process.off("uncaughtException", record);
  failIfSeen("after the last test of this file");
});
