/**
 * The refresh hook (seed 001's "Refresh token callback service"): custom code that
 * obtains the next token when the server does not follow the standard. It is a JS
 * module (its default export, or an export named `refresh`, called with the input) or
 * an HTTPS endpoint (POSTed the input as JSON). Its output is read exactly as a token
 * response; `errorResponse: { error, error_description }` is a token endpoint error.
 * Where a module hook may come from is decided when it is written (broker/hook-policy.ts).
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { TokenwardenError } from "../core/errors.js";
import { isLoopbackHost, isUrlHook } from "../core/integration.js";
import type { ResolvedIntegration } from "../core/resolve.js";
import type { TokenSet } from "../core/token-set.js";
import { type HttpClient, sendHttpRequest } from "./http.js";
import { oauthErrorIn, parseResponseBody, tokenSetFromBody } from "./token-response.js";

/** What a hook is called with (a module's argument, an endpoint's JSON body). */
export interface RefreshHookInput {
  clientId: string;
  clientSecret: string | undefined;
  refreshToken: string | undefined;
  accessToken: string | undefined;
  tokenUrl: string;
  scope: string | undefined;
  parameters: Record<string, string>;
}

type HookFunction = (input: RefreshHookInput) => unknown;

/**
 * Runs refresh hooks for one `Tokenwarden`: its HTTP client for endpoint hooks, and
 * its own cache of loaded modules, so nothing is shared between instances.
 */
export class RefreshHooks {
  readonly #http: HttpClient;
  readonly #modules = new Map<string, Promise<HookFunction>>();

  constructor(http: HttpClient) {
    this.#http = http;
  }

  async run(
    config: ResolvedIntegration,
    input: RefreshHookInput,
    issuedAt: () => number,
  ): Promise<TokenSet> {
    const hook = config.refreshHook;
    if (hook === undefined) throw new TokenwardenError("invalid_config", "refreshHook: is not set");
    const output = isUrlHook(hook)
      ? await callEndpoint(this.#http, hook, config, input)
      : await callModule(() => this.#load(hook), hook, config, input);
    return readOutput(output, config, issuedAt);
  }

  #load(path: string): Promise<HookFunction> {
    const absolute = isAbsolute(path) ? path : resolve(path);
    let loaded = this.#modules.get(absolute);
    if (loaded === undefined) {
      loaded = import(pathToFileURL(absolute).href).then((mod: Record<string, unknown>) => {
        const fn = typeof mod.refresh === "function" ? mod.refresh : mod.default;
        if (typeof fn !== "function") {
          throw new TokenwardenError(
            "hook_error",
            `refresh hook ${path} exports neither a default function nor refresh`,
          );
        }
        return fn as HookFunction;
      });
      loaded.catch(() => this.#modules.delete(absolute)); // a fixed module is picked up on the next run
      this.#modules.set(absolute, loaded);
    }
    return loaded;
  }
}

/** The hook's answer, read exactly as a token response. */
function readOutput(
  output: unknown,
  config: ResolvedIntegration,
  issuedAt: () => number,
): TokenSet {
  if (output === null || typeof output !== "object" || Array.isArray(output)) {
    throw new TokenwardenError("hook_error", "the refresh hook returned no object");
  }
  const body = output as Record<string, unknown>;
  const errorResponse = body.errorResponse;
  if (errorResponse !== undefined && errorResponse !== null) {
    const oauth = oauthErrorIn(
      typeof errorResponse === "object" ? (errorResponse as Record<string, unknown>) : {},
    );
    const error = oauth?.error ?? "hook_error";
    throw new TokenwardenError(
      "token_endpoint_error",
      `the refresh hook answered ${error}${oauth?.description === undefined ? "" : ` (${oauth.description})`}`,
      {
        oauthError: error,
        ...(oauth?.description === undefined ? {} : { oauthErrorDescription: oauth.description }),
      },
    );
  }
  try {
    return tokenSetFromBody(body, config, issuedAt(), "the refresh hook");
  } catch (error) {
    if (error instanceof TokenwardenError) throw new TokenwardenError("hook_error", error.message);
    throw error;
  }
}

async function callModule(
  load: () => Promise<HookFunction>,
  path: string,
  config: ResolvedIntegration,
  input: RefreshHookInput,
): Promise<unknown> {
  let fn: HookFunction;
  try {
    fn = await load();
  } catch (error) {
    if (error instanceof TokenwardenError) throw error;
    throw new TokenwardenError(
      "hook_error",
      `could not load refresh hook ${path}: ${messageOf(error)}`,
      { cause: error },
    );
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new TokenwardenError(
            "timeout",
            `the refresh hook did not finish within ${config.timeoutMs} ms`,
          ),
        ),
      config.timeoutMs,
    );
  });
  try {
    return await Promise.race([Promise.resolve().then(() => fn(input)), timeout]);
  } catch (error) {
    if (error instanceof TokenwardenError) throw error;
    throw new TokenwardenError("hook_error", `the refresh hook failed: ${messageOf(error)}`, {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
  }
}

async function callEndpoint(
  http: HttpClient,
  url: string,
  config: ResolvedIntegration,
  input: RefreshHookInput,
): Promise<unknown> {
  // Checked again on the final URL: the input carries the client secret.
  const target = URL.canParse(url) ? new URL(url) : undefined;
  const allowed =
    target !== undefined &&
    (target.protocol === "https:" ||
      (target.protocol === "http:" && isLoopbackHost(target.hostname)));
  if (!allowed) {
    throw new TokenwardenError(
      "invalid_config",
      "refreshHook: must be an https:// URL, or an http:// URL on loopback",
      { field: "refreshHook" },
    );
  }
  const res = await sendHttpRequest(
    {
      method: "POST",
      url: target,
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(input),
    },
    config,
    { what: `refresh hook ${new URL(url).origin}${new URL(url).pathname}`, http },
  );
  const body = parseResponseBody(res);
  if (res.status < 200 || res.status > 299) {
    if (body?.errorResponse !== undefined) return body;
    throw new TokenwardenError("hook_error", `the refresh hook answered HTTP ${res.status}`, {
      status: res.status,
    });
  }
  if (body === undefined)
    throw new TokenwardenError("hook_error", "the refresh hook's answer is not JSON");
  return body;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
