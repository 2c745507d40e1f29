/**
 * Where a module refresh hook may come from (SECURITY.md, "Hook code"). A module
 * hook runs inside the process with the client secret as input, so through the
 * service (whose callers hold API keys, not a shell) it may only name a file under
 * the hooks folder: the name is taken relative to it and resolved with realpath, so
 * `..`, absolute paths, symbolic links and specifiers such as `file:` or `node:`
 * cannot lead out of it. The library and the declarative file may name any module.
 */
import { realpath, stat } from "node:fs/promises";
import { resolve, sep } from "node:path";
import { invalidConfig } from "../core/errors.js";

export interface ModuleHookPolicy {
  /** The hooks folder (`TOKENWARDEN_HOOKS_DIR`); without one, module hooks are refused. */
  dir: string | undefined;
}

/** The real path of the hook file, checked to lie under the folder: what is stored. */
export async function confineModuleHook(hook: string, policy: ModuleHookPolicy): Promise<string> {
  if (policy.dir === undefined) {
    throw invalidConfig(
      "refreshHook",
      "a module hook can be set through the service only when TOKENWARDEN_HOOKS_DIR (--hooks-dir) names the folder it must be in; use an https:// hook, or the declarative file",
    );
  }
  let dir: string;
  try {
    dir = await realpath(resolve(policy.dir));
  } catch {
    throw invalidConfig("refreshHook", "the hooks folder (TOKENWARDEN_HOOKS_DIR) cannot be read");
  }
  let file: string;
  try {
    file = await realpath(resolve(dir, hook));
  } catch {
    throw invalidConfig("refreshHook", "names no file in the hooks folder (TOKENWARDEN_HOOKS_DIR)");
  }
  if (!file.startsWith(`${dir}${sep}`)) {
    throw invalidConfig(
      "refreshHook",
      "must name a file inside the hooks folder (TOKENWARDEN_HOOKS_DIR), relative to it",
    );
  }
  if (!(await stat(file)).isFile())
    throw invalidConfig("refreshHook", "must name a file, not a folder");
  return file;
}
