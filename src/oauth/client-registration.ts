/**
 * Who Tokenwarden is to an authorization server it has no client at: the metadata
 * describing it (one shape for both uses), served as a client ID metadata document
 * whose https URL is the client id, or sent to the server's registration endpoint
 * (RFC 7591 §3, dynamic client registration) to be given a client id and secret.
 */
import { z } from "zod";
import { TokenwardenError } from "../core/errors.js";
import { type ClientAuthMethod, isLoopbackHost } from "../core/integration.js";
import {
  describeEndpoint,
  type HttpClient,
  sendHttpRequest,
  type TransportSettings,
} from "./http.js";

export const CLIENT_NAME = "Tokenwarden";

/** RFC 7591 §2 token endpoint authentication methods, and the `clientAuth` each is. */
const AUTH_METHODS = {
  client_secret_basic: "basic",
  client_secret_post: "body",
  none: "none",
} as const satisfies Record<string, ClientAuthMethod>;
export type RegisteredAuthMethod = keyof typeof AUTH_METHODS;

export interface ClientMetadata {
  client_id?: string;
  client_name: string;
  redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  token_endpoint_auth_method: RegisteredAuthMethod;
}

/** The metadata of a client using the authorization code grant with refresh tokens. */
export function clientMetadata(
  redirectUri: string,
  authMethod: RegisteredAuthMethod,
  clientId?: string,
): ClientMetadata {
  return {
    ...(clientId === undefined ? {} : { client_id: clientId }),
    client_name: CLIENT_NAME,
    redirect_uris: [redirectUri],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: authMethod,
  };
}

/**
 * A client ID metadata document's client id is its own https URL, and it holds no
 * secret: it authenticates with `none` (PKCE protects the code).
 */
export function clientMetadataDocument(documentUrl: string, redirectUri: string): ClientMetadata {
  return clientMetadata(redirectUri, "none", documentUrl);
}

/** Whether a URL may be a client ID metadata document's (and so a client id): https, with a path. */
export function isClientMetadataDocumentUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  return url.protocol === "https:" && url.hash === "" && url.pathname !== "/";
}

/**
 * The method to register with: a secret when the server takes one (a broker keeps
 * secrets sealed, so it may be a confidential client), `none` otherwise.
 * RFC 8414 §2: a server that lists no methods takes `client_secret_basic`.
 */
export function registrationAuthMethod(
  supported: readonly string[] | undefined,
): RegisteredAuthMethod {
  if (supported === undefined || supported.includes("client_secret_basic")) {
    return "client_secret_basic";
  }
  if (supported.includes("client_secret_post")) return "client_secret_post";
  return "none";
}

export interface RegisteredClient {
  clientId: string;
  clientSecret: string | undefined;
  clientAuth: ClientAuthMethod;
}

const registrationResponseSchema = z.looseObject({
  client_id: z.string().min(1),
  client_secret: z.string().min(1).optional(),
  token_endpoint_auth_method: z.string().optional(),
});

/** A registration answer is a few kilobytes. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * RFC 7591 §3.1 client registration request. The answer's client id and secret are
 * returned, never logged; an error names the server's `error` code only (its
 * description may echo what was sent).
 */
export async function registerClient(
  registrationEndpoint: string,
  metadata: ClientMetadata,
  transport: TransportSettings,
  options: { http?: HttpClient } = {},
): Promise<RegisteredClient> {
  const url = new URL(registrationEndpoint);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopbackHost(url.hostname))) {
    throw failed(`registration endpoint ${describeEndpoint(url)} is not https: refused`);
  }
  const what = `registration endpoint ${describeEndpoint(url)}`;
  const res = await sendHttpRequest(
    {
      method: "POST",
      url,
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(metadata),
    },
    transport,
    { what, maxResponseBytes: MAX_RESPONSE_BYTES, ...(options.http && { http: options.http }) },
  );
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    throw failed(`${what} answered HTTP ${res.status}, not JSON`, res.status);
  }
  if (res.status !== 201 && res.status !== 200) {
    const code =
      typeof body === "object" &&
      body !== null &&
      typeof (body as { error?: unknown }).error === "string"
        ? (body as { error: string }).error
        : undefined;
    throw failed(
      `${what} refused the registration (HTTP ${res.status}${code === undefined ? "" : `, ${code}`})`,
      res.status,
    );
  }
  const parsed = registrationResponseSchema.safeParse(body);
  if (!parsed.success) throw failed(`${what} answered without a client_id`, res.status);
  const method = parsed.data.token_endpoint_auth_method ?? metadata.token_endpoint_auth_method;
  const clientAuth = Object.hasOwn(AUTH_METHODS, method)
    ? AUTH_METHODS[method as RegisteredAuthMethod]
    : undefined;
  if (clientAuth === undefined) {
    throw failed(`${what} registered the client for ${method}, which is not supported`);
  }
  if (clientAuth !== "none" && parsed.data.client_secret === undefined) {
    throw failed(`${what} registered a client for ${method} without a client_secret`);
  }
  return {
    clientId: parsed.data.client_id,
    clientSecret: clientAuth === "none" ? undefined : parsed.data.client_secret,
    clientAuth,
  };
}

function failed(reason: string, status?: number): TokenwardenError {
  return new TokenwardenError("invalid_config", `clientId: ${reason}`, {
    field: "clientId",
    ...(status === undefined ? {} : { status }),
  });
}
