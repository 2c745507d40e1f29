import { Tokenwarden } from "../broker/tokenwarden.js";
import { loadDeclarativeFile } from "../config/declarative.js";
import { resolveSettings, type SettingFlags, type Settings } from "../config/settings.js";

/** Flags every command takes. */
export interface GlobalFlags extends SettingFlags {
  json?: boolean;
}

/**
 * Opens the configured store (the same database the service uses) without the
 * scheduler, upserts `--config` first, runs one command, closes.
 */
export async function withTokenwarden<T>(
  flags: GlobalFlags,
  run: (tw: Tokenwarden, settings: Settings) => Promise<T>,
): Promise<T> {
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
