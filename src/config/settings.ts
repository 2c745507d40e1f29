/**
 * Every setting has a flag and an environment variable; flags win, then the
 * variable, then the default. commander does that merge (`Option.env()`), from the
 * options made here; `resolveSettings` then checks the values and derives the rest.
 * The master key and API keys are read from the environment only: a flag would show
 * them to anyone who can list processes.
 */
import { type Command, Option } from "commander";
import { invalidConfig } from "../core/errors.js";
import { splitKeyList } from "../store/master-key.js";
import { DEFAULT_DATABASE_URL } from "../store/open.js";

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
  /** Renewals at once per token endpoint host (`Tokenwarden.open`'s option). */
  tokenEndpointConcurrency: number;
  /** Tokens held in memory at most (`Tokenwarden.open`'s option). */
  tokenCacheSize: number;
}

/** The settings that have a flag, as commander hands them over (flag, else variable, else default). */
export interface SettingFlags {
  database?: string;
  host?: string;
  port?: string | number;
  publicUrl?: string;
  config?: string;
  logLevel?: string;
  hooksDir?: string;
  tokenEndpointConcurrency?: string | number;
  tokenCacheSize?: string | number;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

interface SettingOption {
  flags: string;
  env: string;
  description: string;
  default?: string;
}

const OPTIONS = {
  database: {
    flags: "--database <url>",
    env: "TOKENWARDEN_DATABASE_URL",
    description: "sqlite:<path> or postgres://...",
    default: DEFAULT_DATABASE_URL,
  },
  config: {
    flags: "--config <file>",
    env: "TOKENWARDEN_CONFIG",
    description: "tokenwarden.yaml to upsert before the command",
  },
  host: {
    flags: "--host <host>",
    env: "TOKENWARDEN_HOST",
    description: "address to listen on",
    default: "127.0.0.1",
  },
  port: {
    flags: "--port <port>",
    env: "TOKENWARDEN_PORT",
    description: "port to listen on",
    default: "4180",
  },
  publicUrl: {
    flags: "--public-url <url>",
    env: "TOKENWARDEN_PUBLIC_URL",
    description:
      "base of the redirect URL <public-url>/oauth/callback (default: http://<host>:<port>)",
  },
  hooksDir: {
    flags: "--hooks-dir <dir>",
    env: "TOKENWARDEN_HOOKS_DIR",
    description:
      "folder that module refresh hooks set through the API must lie in (default: none, such hooks are refused)",
  },
  tokenEndpointConcurrency: {
    flags: "--token-endpoint-concurrency <n>",
    env: "TOKENWARDEN_TOKEN_ENDPOINT_CONCURRENCY",
    description:
      "renewals at once per token endpoint host, so a storm of expiries does not flood a provider",
    default: "64",
  },
  tokenCacheSize: {
    flags: "--token-cache-size <n>",
    env: "TOKENWARDEN_TOKEN_CACHE_SIZE",
    description:
      "tokens held in memory at most, so a read answers without the database (the least read go first)",
    default: "10000",
  },
  logLevel: {
    flags: "--log-level <level>",
    env: "TOKENWARDEN_LOG_LEVEL",
    description: LOG_LEVELS.join("|"),
    default: "info",
  },
} satisfies Record<keyof SettingFlags, SettingOption>;

/** Settings every command takes (the database and the declarative file). */
export const GLOBAL_SETTINGS = ["database", "config"] as const;
/** Settings only the service takes. */
export const SERVICE_SETTINGS = [
  "host",
  "port",
  "publicUrl",
  "hooksDir",
  "tokenEndpointConcurrency",
  "tokenCacheSize",
  "logLevel",
] as const;

/** The commander option of a setting: its flag, its variable and its default. */
export function settingOption(name: keyof SettingFlags): Option {
  const spec: SettingOption = OPTIONS[name];
  const option = new Option(spec.flags, spec.description).env(spec.env);
  return spec.default === undefined ? option : option.default(spec.default);
}

/** Adds these settings' options to a command. */
export function addSettingOptions(
  command: Command,
  names: readonly (keyof SettingFlags)[],
): Command {
  for (const name of names) command.addOption(settingOption(name));
  return command;
}

/**
 * Checks the values and derives the rest. Values left out (a program that calls this
 * without commander) take their defaults; `env` is read for the keys only.
 */
export function resolveSettings(
  flags: SettingFlags = {},
  env: NodeJS.ProcessEnv = process.env,
): Settings {
  const value = (name: keyof typeof OPTIONS): string | undefined => {
    const given = flags[name];
    if (given !== undefined) return String(given);
    const spec: SettingOption = OPTIONS[name];
    return spec.default;
  };
  const host = value("host") as string;
  const portText = value("port") as string;
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535)
    throw invalidConfig("port", "must be a TCP port number (0-65535)");
  const publicUrl = (
    value("publicUrl") ?? `http://${host.includes(":") ? `[${host}]` : host}:${port}`
  ).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]+/.test(publicUrl) || !URL.canParse(publicUrl)) {
    throw invalidConfig(
      "publicUrl",
      "must be an absolute http(s) URL such as https://tokens.example.com",
    );
  }
  const wholeNumber = (name: "tokenEndpointConcurrency" | "tokenCacheSize", max: number) => {
    const text = String(value(name));
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < 1 || n > max)
      throw invalidConfig(name, `must be a whole number from 1 to ${max}`);
    return n;
  };
  const tokenEndpointConcurrency = wholeNumber("tokenEndpointConcurrency", 10_000);
  const tokenCacheSize = wholeNumber("tokenCacheSize", 10_000_000);
  const logLevel = value("logLevel") as string;
  if (!LOG_LEVELS.includes(logLevel))
    throw invalidConfig("logLevel", `must be one of ${LOG_LEVELS.join(", ")}`);
  return {
    database: value("database") as string,
    host,
    port,
    publicUrl,
    secretKey: env.TOKENWARDEN_SECRET_KEY === "" ? undefined : env.TOKENWARDEN_SECRET_KEY,
    previousSecretKeys: splitKeyList(env.TOKENWARDEN_PREVIOUS_SECRET_KEYS),
    apiKeys: (env.TOKENWARDEN_API_KEYS ?? "")
      .split(",")
      .map((k) => k.trim())
      .filter((k) => k !== ""),
    config: value("config"),
    logLevel,
    hooksDir: nonEmpty(value("hooksDir")),
    connectReturnOrigins: returnOrigins(env.TOKENWARDEN_CONNECT_RETURN_ORIGINS),
    tokenEndpointConcurrency,
    tokenCacheSize,
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
