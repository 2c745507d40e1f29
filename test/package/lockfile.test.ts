import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

/**
 * `npm ci` installs exactly what package-lock.json holds, and refuses a lock that lacks a
 * package the machine needs. npm leaves out of the lock an optional package the registry
 * could not serve when the lock was written (Biome's and Rollup's builds for other
 * platforms, say), so a lock that works here can fail on a Mac or on Alpine. This checks
 * every platform's packages are in, each with its registry address and checksum.
 */
interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

interface Lock {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
}

const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as Lock;
const manifest = JSON.parse(readFileSync("package.json", "utf8")) as LockEntry;

/** Where Node (and npm) would find `name` for the package at `from`: its own node_modules, then upwards. */
function locate(from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = base === "" ? `node_modules/${name}` : `${base}/node_modules/${name}`;
    if (lock.packages[candidate] !== undefined) return candidate;
    if (base === "") return undefined;
    const at = base.lastIndexOf("/node_modules/");
    base = at === -1 ? "" : base.slice(0, at);
  }
}

function missingEdges(): string[] {
  const missing: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    const wanted = {
      ...entry.dependencies,
      ...entry.optionalDependencies,
      ...(path === "" ? entry.devDependencies : {}),
    };
    for (const [name, range] of Object.entries(wanted)) {
      const found = locate(path, name);
      const version = found === undefined ? undefined : lock.packages[found]?.version;
      if (found === undefined) missing.push(`${path || "(root)"} -> ${name}@${range}`);
      else if (/^\d+\.\d+\.\d+$/.test(range) && version !== range)
        missing.push(`${path || "(root)"} -> ${name}@${range} (the lock has ${version})`);
    }
  }
  return missing;
}

describe("package-lock.json", () => {
  it("is a version 3 lock whose root matches package.json", () => {
    expect(lock.lockfileVersion).toBe(3);
    const root = lock.packages[""];
    expect(root?.dependencies).toEqual(manifest.dependencies);
    expect(root?.optionalDependencies).toEqual(manifest.optionalDependencies);
    expect(root?.devDependencies).toEqual(manifest.devDependencies);
  });

  it("holds every dependency of every package, other platforms' optional builds included", () => {
    expect(missingEdges()).toEqual([]);
  });

  it("gives every package its registry address and checksum", () => {
    const incomplete = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== "" && entry.link !== true)
      .filter(
        ([, entry]) =>
          !entry.resolved?.startsWith("https://registry.npmjs.org/") ||
          !entry.integrity?.startsWith("sha512-"),
      )
      .map(([path]) => path);
    expect(incomplete).toEqual([]);
  });

  it("has a platform build of Biome for Linux, macOS and Windows, so `npm ci` works on each", () => {
    const builds = Object.keys(lock.packages).filter((p) => p.includes("@biomejs/cli-"));
    for (const platform of ["linux-x64", "linux-x64-musl", "darwin-arm64", "win32-x64"])
      expect(builds).toContain(`node_modules/@biomejs/cli-${platform}`);
  });
});
