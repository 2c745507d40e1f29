import { Headers, type RequestInit as UndiciRequestInit, fetch as undiciFetch } from "undici";
import { invalidConfig } from "../core/errors.js";
import { isHttpUrl } from "../core/integration.js";
import type { ResolvedIntegration } from "../core/resolve.js";
import type { TokenSet } from "../core/token-set.js";
import { dispatcherFor, transportError } from "../oauth/http.js";

/**
 * An API call with the token in place (seed 003's token parameter and request
 * parameters), and the one refresh-and-retry of PRODUCT.md point 7.
 */
export type ApiRequestInit = Omit<UndiciRequestInit, "dispatcher">;
type ApiResponse = Awaited<ReturnType<typeof undiciFetch>>;

/** Asks the broker for a token other than the one the API refused. */
export type RenewAfterRejection = (rejected: TokenSet) => Promise<TokenSet>;

export function apiUrl(
  config: Pick<ResolvedIntegration, "apiBaseUrl" | "requestParams">,
  path: string,
): URL {
  let url: URL;
  if (isHttpUrl(path)) {
    url = new URL(path);
  } else {
    if (config.apiBaseUrl === undefined)
      throw invalidConfig("apiBaseUrl", "is needed to call a relative path");
    const base = config.apiBaseUrl.endsWith("/") ? config.apiBaseUrl : `${config.apiBaseUrl}/`;
    url = new URL(path.replace(/^\/+/, ""), base);
  }
  for (const [name, value] of Object.entries(config.requestParams.query))
    url.searchParams.set(name, value);
  return url;
}

/** Places the token (header or query) and the integration's request headers. */
export function placeToken(
  config: Pick<ResolvedIntegration, "tokenPlacement" | "requestParams">,
  token: TokenSet,
  url: URL,
  headers: Headers,
): void {
  for (const [name, value] of Object.entries(config.requestParams.headers))
    headers.set(name, value);
  const { in: where, name, template } = config.tokenPlacement;
  const value = template.replaceAll("{token}", token.accessToken);
  if (where === "header") headers.set(name, value);
  else url.searchParams.set(name, value);
}

/** Whether a body can be sent a second time (a stream cannot). */
export function isReplayable(body: UndiciRequestInit["body"]): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === "string" ||
    body instanceof URLSearchParams ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body)
  );
}

/** Did the API refuse the token? `retryOn` statuses, or a body matching `expiredBodyPattern`. */
export async function tokenRefused(
  config: Pick<ResolvedIntegration, "retryOn" | "expiredBodyPattern">,
  res: ApiResponse,
): Promise<boolean> {
  if (config.retryOn.includes(res.status)) return true;
  if (config.expiredBodyPattern === undefined) return false;
  const text = await res.clone().text();
  return new RegExp(config.expiredBodyPattern).test(text);
}

export async function callApi(
  config: ResolvedIntegration,
  token: TokenSet,
  path: string,
  init: ApiRequestInit,
  renew: RenewAfterRejection,
): Promise<ApiResponse> {
  const send = async (current: TokenSet): Promise<ApiResponse> => {
    const url = apiUrl(config, path);
    const headers = new Headers(init.headers);
    placeToken(config, current, url, headers);
    try {
      return await undiciFetch(url, {
        ...init,
        headers,
        dispatcher: dispatcherFor(config),
        redirect: init.redirect ?? "manual",
      });
    } catch (error) {
      throw transportError(error, `${url.origin}${url.pathname}`, config.timeoutMs, false);
    }
  };
  const first = await send(token);
  if (!isReplayable(init.body) || !(await tokenRefused(config, first))) return first;
  await first.body?.cancel();
  return send(await renew(token));
}
