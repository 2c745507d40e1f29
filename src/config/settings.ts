import { invalidConfig } from "../core/errors.js";
import { splitKeyList } from "../store/master-key.js";
import { DEFAULT_DATABASE_URL } from "../store/open.js";

/**
 * Every setting has a flag and an environment variable; flags win (PRODUCT.md
 * "Configuration"). The CLI and the service read their settings through here.
 */
export interface Settings {
  database: string;
  host: string;
  port: number;
  /** Base of the redirect URL `<publicUrl>/oauth/callback`, without a trailing slash. */
  publicUrl: string;
  secretKey: string | undefined;
  /** Older keys that open values sealed before a rotation (`TOKENWARDEN_PREVIOUS_SECRET_KEYS`). */
  previousSecretKeys: string[];
  /** Keys accepted besides the stored ones (`TOKENWARDEN_API_KEYS`, comma-separated). */
  apiKeys: string[];
  config: string | undefined;
  logLevel: string;
  /**
   * The folder module refresh hooks set through the service must lie in
   * (`TOKENWARDEN_HOOKS_DIR`); without it the service refuses module hooks.
   */
  hooksDir: string | undefined;
  /** Origins a connect link may return to (`TOKENWARDEN_CONNECT_RETURN_ORIGINS`, comma-separated). */
  connectReturnOrigins: string[];
}

export interface SettingFlags {
  database?: string;
  host?: string;
  port?: string | number;
  publicUrl?: string;
  config?: string;
  logLevel?: string;
  hooksDir?: string;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export function resolveSettings(
  flags: SettingFlags = {},
  env: NodeJS.ProcessEnv = process.env,
): Settings {
  const host = flags.host ?? env.TOKENWARDEN_HOST ?? "127.0.0.1";
  const portText = String(flags.port ?? env.TOKENWARDEN_PORT ?? "4180");
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535)
    throw invalidConfig("port", "must be a TCP port number (0-65535)");
  const publicUrl = (
    flags.publicUrl ??
    env.TOKENWARDEN_PUBLIC_URL ??
    `http://${host.includes(":") ? `[${host}]` : host}:${port}`
  ).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]+/.test(publicUrl) || !URL.canParse(publicUrl)) {
    throw invalidConfig(
      "publicUrl",
      "must be an absolute http(s) URL such as https://tokens.example.com",
    );
  }
  const logLevel = flags.logLevel ?? env.TOKENWARDEN_LOG_LEVEL ?? "info";
  if (!LOG_LEVELS.includes(logLevel))
    throw invalidConfig("logLevel", `must be one of ${LOG_LEVELS.join(", ")}`);
  return {
    database: flags.database ?? env.TOKENWARDEN_DATABASE_URL ?? DEFAULT_DATABASE_URL,
    host,
    port,
    publicUrl,
    secretKey: env.TOKENWARDEN_SECRET_KEY === "" ? undefined : env.TOKENWARDEN_SECRET_KEY,
    previousSecretKeys: splitKeyList(env.TOKENWARDEN_PREVIOUS_SECRET_KEYS),
    apiKeys: (env.TOKENWARDEN_API_KEYS ?? "")
      .split(",")
      .map((k) => k.trim())
      .filter((k) => k !== ""),
    config: flags.config ?? env.TOKENWARDEN_CONFIG,
    logLevel,
    hooksDir: nonEmpty(flags.hooksDir) ?? nonEmpty(env.TOKENWARDEN_HOOKS_DIR),
    connectReturnOrigins: returnOrigins(env.TOKENWARDEN_CONNECT_RETURN_ORIGINS),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** Each must be an http(s) origin; kept as parsed origins, so comparisons are exact. */
function returnOrigins(text: string | undefined): string[] {
  const origins = (text ?? "")
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o !== "");
  return origins.map((o) => {
    if (!URL.canParse(o) || !/^https?:$/.test(new URL(o).protocol))
      throw invalidConfig("TOKENWARDEN_CONNECT_RETURN_ORIGINS", `${o} is not an http(s) origin`);
    return new URL(o).origin;
  });
}
