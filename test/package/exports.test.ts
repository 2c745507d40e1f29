import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

/**
 * The package as its users load it, by name, from the built dist (global setup builds
 * it): `import` from an ES module and `require` from a CommonJS file (Node.js 20.19+
 * and 22.12+ load ES modules through require). The files sit inside the package, so
 * "tokenwarden" resolves to the package itself through its "exports".
 */
mkdirSync(join("test", ".tmp"), { recursive: true });
const dir = mkdtempSync(join("test", ".tmp", "exports-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const report = `JSON.stringify({ keys: Object.keys(tw).sort(), ctor: typeof tw.Tokenwarden, parse: typeof tw.parseIntegration })`;

function run(file: string, source: string): { keys: string[]; ctor: string; parse: string } {
  const path = join(dir, file);
  writeFileSync(path, source);
  const out = execFileSync(process.execPath, [path], { encoding: "utf8", stdio: "pipe" });
  return JSON.parse(out);
}

describe("the package", () => {
  it("loads with require from CommonJS, with the same exports as import", () => {
    const required = run(
      "load.cjs",
      `const tw = require("tokenwarden");\nconsole.log(${report});\n`,
    );
    const imported = run(
      "load.mjs",
      `import * as tw from "tokenwarden";\nconsole.log(${report});\n`,
    );
    expect(required.ctor).toBe("function");
    expect(required.parse).toBe("function");
    expect(required.keys).toEqual(imported.keys.filter((k) => k !== "default"));
    expect(required.keys.length).toBeGreaterThan(20);
  });

  it("packs the build, the admin page, the README and the MIT LICENSE, and nothing else", () => {
    // --ignore-scripts: global setup has built dist already; prepack would build again.
    const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const [pack] = JSON.parse(out) as Array<{ files: Array<{ path: string }> }>;
    const files = (pack?.files ?? []).map((f) => f.path);
    expect(files).toContain("LICENSE");
    const manifest = JSON.parse(readFileSync("package.json", "utf8")) as { license: string };
    expect(readFileSync("LICENSE", "utf8")).toMatch(new RegExp(`^${manifest.license} License\\n`));
    expect(files).toContain("dist/index.js");
    expect(files).toContain("dist/index.d.ts");
    expect(files).toContain("dist/cli/main.js");
    expect(files).toContain("public/admin/index.html");
    expect(files).toContain("presets/catalogue.json");
    const unexpected = files.filter(
      (f) =>
        !/^(dist\/|public\/admin\/|presets\/catalogue\.json$|LICENSE$|README\.md$|package\.json$)/.test(
          f,
        ),
    );
    expect(unexpected).toEqual([]);
  });
});
