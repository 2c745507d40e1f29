/**
 * `tokenwarden serve`: open the store, upsert the declarative file, make sure an API
 * key exists, listen, and shut down gracefully (refreshes in flight finish).
 */
import type { FastifyInstance } from "fastify";
import { Tokenwarden } from "../broker/tokenwarden.js";
import { loadDeclarativeFile } from "../config/declarative.js";
import type { Settings } from "../config/settings.js";
import { buildServer } from "./server.js";
import { holdTickShape } from "./tick-shape.js";

export interface RunningService {
  url: string;
  app: FastifyInstance;
  tw: Tokenwarden;
  /** Set on a first run: the key to print once. */
  firstApiKey: string | undefined;
  close(): Promise<void>;
}

export interface ServeOptions {
  /** Pino options, or false to log nothing (tests). */
  logger?: false | Record<string, unknown>;
  scheduler?: boolean | { tickMs?: number };
  webhooks?: boolean | { tickMs?: number };
}

export async function startService(
  settings: Settings,
  options: ServeOptions = {},
): Promise<RunningService> {
  const tw = await Tokenwarden.open({
    database: settings.database,
    ...(settings.secretKey === undefined ? {} : { secretKey: settings.secretKey }),
    previousSecretKeys: settings.previousSecretKeys,
    tokenEndpointConcurrency: settings.tokenEndpointConcurrency,
    tokenCacheSize: settings.tokenCacheSize,
    ...(options.scheduler === undefined ? {} : { scheduler: options.scheduler }),
    ...(options.webhooks === undefined ? {} : { webhooks: options.webhooks }),
  });
  try {
    if (settings.config !== undefined)
      await tw.applyDeclarative(await loadDeclarativeFile(settings.config));
    const keys = tw.apiKeys.ring(settings.apiKeys);
    const firstApiKey = await keys.ensureFirstKey(Date.now());
    const app = await buildServer({
      tw,
      keys,
      publicUrl: settings.publicUrl,
      hooksDir: settings.hooksDir,
      connectReturnOrigins: settings.connectReturnOrigins,
      logger: options.logger === undefined ? { level: settings.logLevel } : options.logger,
    });
    await holdTickShape(app);
    await app.listen({ host: settings.host, port: settings.port });
    const address = app.server.address();
    const port = typeof address === "object" && address !== null ? address.port : settings.port;
    const host = settings.host.includes(":") ? `[${settings.host}]` : settings.host;
    let closing: Promise<void> | undefined;
    return {
      url: `http://${host}:${port}`,
      app,
      tw,
      firstApiKey,
      close: () => {
        closing ??= (async () => {
          await app.close(); // stops accepting, lets requests in flight finish
          await tw.close(); // stops the scheduler, lets refreshes in flight finish
        })();
        return closing;
      },
    };
  } catch (error) {
    await tw.close();
    throw error;
  }
}
