/**
 * `clientAuth: auto`: try the methods this client can do (in an order most servers
 * accept), moving on only when the server refuses the client's authentication, then
 * remember what worked (the broker keeps it in the store, per integration) and start
 * with it next time. Metadata's `token_endpoint_auth_methods_supported`, when known,
 * narrows the list.
 */
import { TokenwardenError } from "../core/errors.js";
import type { ClientAuthMethod } from "../core/integration.js";
import type { ServerMetadata } from "../core/server-metadata.js";
import type { ConcreteClientAuthMethod } from "./client-auth.js";

export interface ClientAuthMemory {
  get(): Promise<ConcreteClientAuthMethod | undefined>;
  set(method: ConcreteClientAuthMethod): Promise<void>;
}

export interface AutoAuthConfig {
  clientAuth: ClientAuthMethod;
  clientSecret?: string | undefined;
  clientPrivateKey?: string | undefined;
  tls: { cert?: string | undefined };
  server?: ServerMetadata | undefined;
}

/** RFC 8414 / IANA names of the methods, as metadata lists them. */
const REGISTERED_NAME: Record<ConcreteClientAuthMethod, string> = {
  basic: "client_secret_basic",
  basic_raw: "client_secret_basic",
  body: "client_secret_post",
  query: "client_secret_post",
  client_secret_jwt: "client_secret_jwt",
  private_key_jwt: "private_key_jwt",
  tls_client_auth: "tls_client_auth",
  none: "none",
};

/** The methods `auto` may try for this client, best first. */
export function clientAuthCandidates(config: AutoAuthConfig): ConcreteClientAuthMethod[] {
  const all: ConcreteClientAuthMethod[] = [];
  if (config.clientPrivateKey !== undefined) all.push("private_key_jwt");
  if (config.tls.cert !== undefined) all.push("tls_client_auth");
  // basic first (RFC 6749 §2.3.1: servers MUST support it); basic_raw for those that
  // do not decode the form encoding; the JWT last, as few servers offer it.
  if (config.clientSecret !== undefined)
    all.push("basic", "body", "basic_raw", "client_secret_jwt");
  if (all.length === 0) all.push("none");
  const supported = config.server?.token_endpoint_auth_methods_supported;
  if (supported === undefined) return all;
  const narrowed = all.filter((m) => supported.includes(REGISTERED_NAME[m]));
  return narrowed.length > 0 ? narrowed : all;
}

/** Whether a failure says the server did not accept how the client authenticated. */
export function refusedClientAuth(error: unknown): boolean {
  return (
    error instanceof TokenwardenError &&
    error.code === "token_endpoint_error" &&
    (error.oauthError === "invalid_client" || error.status === 401)
  );
}

/**
 * Runs `send` with the configured method, or for `auto` with each candidate until
 * one is accepted. A failure other than a refused client ends the search: the
 * server accepted the client and refused something else.
 */
export async function withClientAuth<T>(
  config: AutoAuthConfig,
  memory: ClientAuthMemory | undefined,
  send: (method: ConcreteClientAuthMethod) => Promise<T>,
): Promise<T> {
  if (config.clientAuth !== "auto") return send(config.clientAuth);
  const candidates = clientAuthCandidates(config);
  const learned = await memory?.get();
  const order =
    learned !== undefined && candidates.includes(learned)
      ? [learned, ...candidates.filter((m) => m !== learned)]
      : candidates;
  let last: unknown;
  for (const method of order) {
    try {
      const result = await send(method);
      if (method !== learned) await memory?.set(method);
      return result;
    } catch (error) {
      if (!refusedClientAuth(error)) throw error;
      last = error;
    }
  }
  throw last;
}
