import { type Command, Option } from "commander";
import { Tokenwarden } from "../broker/tokenwarden.js";
import { loadDeclarativeFile } from "../config/declarative.js";
import { resolveSettings, type SettingFlags, type Settings } from "../config/settings.js";
import { invalidConfig } from "../core/errors.js";
import type { Backend } from "./backend.js";
import { LocalBackend } from "./local.js";
import { RemoteBackend } from "./remote.js";

/** Flags every command takes. */
export interface GlobalFlags extends SettingFlags {
  json?: boolean;
  serviceUrl?: string;
}

/**
 * `--service-url` (TOKENWARDEN_URL): the service to talk to instead of the database. Its API
 * key comes from TOKENWARDEN_API_KEY only: a flag would show it to anyone who can list
 * processes.
 */
export function addRemoteOption(program: Command): void {
  program.addOption(
    new Option(
      "--service-url <url>",
      "a running service to talk to (with TOKENWARDEN_API_KEY) instead of the database",
    ).env("TOKENWARDEN_URL"),
  );
}

/** The service's base URL and key, or `undefined` when commands work on the database. */
export function remoteOf(
  flags: GlobalFlags,
  env: NodeJS.ProcessEnv = process.env,
): { url: string; apiKey: string } | undefined {
  if (flags.serviceUrl === undefined || flags.serviceUrl === "") return undefined;
  let url: URL;
  try {
    url = new URL(flags.serviceUrl);
  } catch {
    throw invalidConfig(
      "serviceUrl",
      "must be an absolute http(s) URL such as https://tokens.example.com",
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw invalidConfig("serviceUrl", "must be an http(s) URL");
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "")
    throw invalidConfig("serviceUrl", "must hold no credentials, query or fragment");
  const apiKey = env.TOKENWARDEN_API_KEY?.trim() ?? "";
  if (apiKey === "")
    throw invalidConfig(
      "TOKENWARDEN_API_KEY",
      "must be set to an API key of the service at --service-url",
    );
  return { url: url.toString().replace(/\/+$/, ""), apiKey };
}

/**
 * Runs one command against the service when a URL is set, else against the
 * configured store (the same database the service uses, opened without the
 * scheduler). `--config` is upserted first either way.
 */
export async function withBackend<T>(
  flags: GlobalFlags,
  run: (backend: Backend) => Promise<T>,
): Promise<T> {
  const backend = remoteBackendOf(flags);
  if (backend !== undefined) {
    if (flags.config !== undefined)
      await backend.applyDeclarative(await loadDeclarativeFile(flags.config));
    return run(backend);
  }
  return withTokenwarden(flags, (tw, settings) => run(new LocalBackend(tw, settings)));
}

/**
 * The service's side when a URL is set, for a command that otherwise needs no
 * database (`presets` reads this package's own catalogue).
 */
export function remoteBackendOf(flags: GlobalFlags): Backend | undefined {
  const remote = remoteOf(flags);
  return remote === undefined ? undefined : new RemoteBackend(remote.url, remote.apiKey);
}

/** For commands that only make sense on the database: refused when a URL is set. */
export async function withTokenwarden<T>(
  flags: GlobalFlags,
  run: (tw: Tokenwarden, settings: Settings) => Promise<T>,
): Promise<T> {
  refuseRemote(flags, "works on the database directly");
  const settings = resolveSettings(flags);
  const tw = await Tokenwarden.open({
    database: settings.database,
    ...(settings.secretKey === undefined ? {} : { secretKey: settings.secretKey }),
    previousSecretKeys: settings.previousSecretKeys,
    scheduler: false,
    // One-shot: the service's processes deliver what this command puts in the outbox.
    webhooks: false,
  });
  try {
    if (settings.config !== undefined)
      await tw.applyDeclarative(await loadDeclarativeFile(settings.config));
    return await run(tw, settings);
  } finally {
    await tw.close();
  }
}

/** A local-only command said plainly, rather than run against the wrong place. */
export function refuseRemote(flags: GlobalFlags, why: string): void {
  if (flags.serviceUrl === undefined || flags.serviceUrl === "") return;
  throw invalidConfig(
    "serviceUrl",
    `this command ${why} and cannot run through a service; unset TOKENWARDEN_URL (or drop --service-url) to run it here`,
  );
}
