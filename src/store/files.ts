/**
 * Files are private (SECURITY.md). The folders we create for a SQLite
 * database are 0700; the database and its `-wal`/`-shm` journals are 0600. SQLite
 * gives a new journal the mode of its database file, so creating the database file
 * 0600 before SQLite opens it covers the journals too. Modes are set with chmod
 * after creation, so the process umask (even 0) cannot widen them.
 */
import { chmodSync, closeSync, mkdirSync, openSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";

export function preparePrivateDatabaseFile(path: string): void {
  makePrivateDirectories(dirname(path));
  closeSync(openSync(path, "a", 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) tighten(file);
}

/** Creates the missing folders of `dir`, each 0700; existing folders are left as they are. */
function makePrivateDirectories(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (first === undefined) return;
  let current = resolve(first);
  const target = resolve(dir);
  chmodSync(current, 0o700);
  for (const part of relative(current, target)
    .split(sep)
    .filter((p) => p !== "")) {
    current = resolve(current, part);
    chmodSync(current, 0o700);
  }
}

/** Makes an existing file 0600 (one left wider by an older version); a missing one is fine. */
function tighten(file: string): void {
  try {
    chmodSync(file, 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "EPERM" && code !== "EROFS") throw error;
  }
}
