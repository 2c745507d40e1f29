// @ts-check
/** Calls to the `/v1` API with the API key in the Authorization header. */

/** @typedef {import("./types.js").App} App */

/** An answer other than 2xx, with the API's error body (code, field, issues). */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {{ code?: string, message?: string, field?: string,
   *   issues?: Array<{ field: string, message: string }> } | undefined} error
   */
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code;
    this.field = error?.field;
    this.issues = error?.issues ?? [];
  }
}

/**
 * One API call. A 401 means the key was refused (revoked, or the service restarted with
 * other keys): the app is told to sign out, and the error is thrown as any other.
 * @template [T=unknown]
 * @param {App} app
 * @param {"GET" | "PUT" | "POST" | "DELETE"} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<T>}
 */
export async function api(app, method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { authorization: `Bearer ${app.key}`, accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? null : JSON.stringify(body),
  });
  if (res.status === 204) return /** @type {T} */ (null);
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401) app.onUnauthorized("Your API key was refused: sign in again.");
    throw new ApiError(res.status, data?.error);
  }
  return data;
}

/**
 * The path of one connection, with `suffix` (e.g. "/refresh").
 * @param {string} id
 * @param {string} [suffix]
 */
export function connectionPath(id, suffix = "") {
  return `/v1/connections/${encodeURIComponent(id)}${suffix}`;
}
