import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const run = promisify(execFile);

it("an unhandled rejection or an uncaught exception fails the test it happened in", async () => {
  const result = await run(
    process.execPath,
    [
      "node_modules/vitest/vitest.mjs",
      "run",
      "--config",
      resolve("test/fixtures/unhandled/vitest.config.ts"),
      "--reporter",
      "json",
    ],
    { env: { ...process.env, CI: "", NO_COLOR: "1" } },
  ).then(
    (ok) => ({ code: 0, stdout: ok.stdout }),
    (failed: { code: number; stdout: string }) => ({ code: failed.code, stdout: failed.stdout }),
  );
  expect(result.code).not.toBe(0);
  const report = JSON.parse(result.stdout.slice(result.stdout.indexOf("{"))) as {
    testResults: Array<{
      assertionResults: Array<{ title: string; status: string; failureMessages: string[] }>;
    }>;
  };
  const tests = Object.fromEntries(
    (report.testResults[0]?.assertionResults ?? []).map((t) => [t.title, t]),
  );
  expect(tests["a test that leaves a rejection unhandled"]?.status).toBe("failed");
  expect(tests["a test that leaves a rejection unhandled"]?.failureMessages.join("\n")).toContain(
    "nobody awaited this",
  );
  expect(tests["a test that throws from a timer"]?.status).toBe("failed");
  expect(tests["a test that throws from a timer"]?.failureMessages.join("\n")).toContain(
    "thrown from a timer",
  );
  expect(tests["a clean test"]?.status).toBe("passed");
});
