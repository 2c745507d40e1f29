/**
 * Connect sessions: a single-use, expiring link an end
 * user opens without an API key to create or re-authorize one connection. The link
 * carries a random token; the store keeps only its hash. Opening the page reads the
 * session; only the form's POST takes it (so a link preview that fetches the page
 * does not use it up), once: two POSTs racing on one link cannot both pass.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Clock } from "../core/clock.js";
import { checkConnectionAgainst, parseConnection } from "../core/connection.js";
import { invalidConfig, TokenwardenError } from "../core/errors.js";
import { type Integration, idSchema } from "../core/integration.js";
import { resolveIntegration } from "../core/resolve.js";
import { parseOrThrow } from "../core/validation.js";
import type { ConnectSession } from "../store/connect-store.js";
import type { Store } from "../store/store.js";
import type { CatalogueWriter } from "./catalogue.js";
import type { AuthorizationStartOptions } from "./mcp-servers.js";
import type { ConnectionView } from "./views.js";

export const CONNECT_GRANTS = ["authorization_code", "password"] as const;

const MAX_PASSWORD_ATTEMPTS = 5;

export const connectSessionInputSchema = z.strictObject({
  connectionId: idSchema,
  /** Given: a new connection of this integration; left out: an existing connection. */
  integration: idSchema.optional(),
  // Checked as a connection's when the session is made (parseConnection).
  environment: z.string().max(64).optional(),
  parameters: z.record(z.string(), z.string()).optional(),
  expiresInSeconds: z
    .number()
    .int()
    .min(60)
    .max(7 * 24 * 3600)
    .default(3600),
  returnUrl: z.string().max(2048).optional(),
});

/** What the page shows: never a secret. */
export interface ConnectDescription {
  connectionId: string;
  environment: string;
  integration: string;
  displayName: string;
  grantType: Integration["grantType"];
  scopes: string[];
  creates: boolean;
  expiresAt: string;
  /** Where the person is sent to authorize (the page's form-action must allow it). */
  authorizationOrigin: string | null;
}

/** The broker calls a connect session needs (tokenwarden.ts provides them). */
export interface ConnectDeps {
  store: Store;
  clock: Clock;
  writeCatalogue<T>(fn: (catalogue: CatalogueWriter) => Promise<T>): Promise<T>;
  startAuthorization(
    id: string,
    options: AuthorizationStartOptions,
  ): Promise<{ url: string; state: string }>;
  authorizeNow(id: string): Promise<ConnectionView>;
}

export class ConnectSessions {
  readonly #deps: ConnectDeps;

  constructor(deps: ConnectDeps) {
    this.#deps = deps;
  }

  /**
   * A new session; answers its token (the caller builds the link). `returnUrl` must be
   * on one of `returnOrigins`.
   */
  async create(
    input: unknown,
    options: { returnOrigins: readonly string[] },
  ): Promise<{ token: string; expiresAt: string; connectionId: string }> {
    const { store, clock } = this.#deps;
    const parsed = parseOrThrow(connectSessionInputSchema, input);
    const returnUrl =
      parsed.returnUrl === undefined
        ? null
        : allowedReturnUrl(parsed.returnUrl, options.returnOrigins);
    const existing = await store.getConnection(parsed.connectionId);
    let integrationKey: string;
    let environment: string;
    let parameters: Record<string, string>;
    if (parsed.integration === undefined) {
      if (existing === undefined)
        throw new TokenwardenError(
          "not_found",
          `connection ${parsed.connectionId} does not exist (name its integration to create it)`,
        );
      if (parsed.environment !== undefined || parsed.parameters !== undefined)
        throw invalidConfig(
          "integration",
          "is required with environment or parameters (a new connection)",
        );
      ({ integration: integrationKey, environment, parameters } = existing.connection);
    } else {
      if (existing !== undefined)
        throw new TokenwardenError(
          "conflict",
          `connection ${parsed.connectionId} already exists: leave integration out to re-authorize it`,
        );
      integrationKey = parsed.integration;
      environment = parsed.environment ?? "";
      parameters = parsed.parameters ?? {};
    }
    const integration = await this.#integration(integrationKey);
    if (parsed.integration !== undefined) {
      // The connection it will create must be valid, but for what the person brings.
      const connection = parseConnection({
        id: parsed.connectionId,
        integration: integrationKey,
        environment,
        parameters,
      });
      checkConnectionAgainst(
        integration,
        integration.grantType === "password"
          ? { ...connection, username: "-", password: "-" }
          : connection,
      );
    }
    const token = randomBytes(32).toString("base64url");
    const now = clock.now();
    const expiresAt = now + parsed.expiresInSeconds * 1000;
    await store.connectSessions.create(token, {
      connectionId: parsed.connectionId,
      integration: integrationKey,
      environment,
      parameters,
      creates: parsed.integration !== undefined,
      returnUrl,
      expiresAt,
      createdAt: now,
    });
    return {
      token,
      expiresAt: new Date(expiresAt).toISOString(),
      connectionId: parsed.connectionId,
    };
  }

  /** What the page shows for an open session; `not_found` for one used, expired or unknown. */
  async describe(token: string): Promise<ConnectDescription> {
    const session = await this.#deps.store.connectSessions.find(token, this.#deps.clock.now());
    if (session === undefined) throw gone();
    return this.#description(session);
  }

  /**
   * The person pressed "Connect" (authorization code): the session is taken, the
   * connection created if it is new, and the authorization started as the admin
   * page's Authorize does (state and PKCE kept server-side). Answers where to send them.
   */
  async begin(
    token: string,
    redirectUri: string,
    clientMetadataUrl?: string,
  ): Promise<{ url: string }> {
    const session = await this.#take(token, "authorization_code");
    await this.#ensureConnection(session, {});
    const started = await this.#deps.startAuthorization(session.connectionId, {
      redirectUri,
      ...(clientMetadataUrl === undefined ? {} : { clientMetadataUrl }),
    });
    await this.#deps.store.connectSessions.attachState(token, started.state);
    return { url: started.url };
  }

  /**
   * The password grant: the person's username and password are stored (sealed) on
   * the connection and a token obtained at once. A wrong password leaves the link
   * usable a few times more.
   */
  async submitPassword(
    token: string,
    credentials: { username: string; password: string },
  ): Promise<{ connection: ConnectionView; returnUrl: string | null }> {
    const session = await this.#take(token, "password");
    try {
      await this.#ensureConnection(session, credentials);
      const connection = await this.#deps.authorizeNow(session.connectionId);
      await this.#deps.store.connectSessions.complete(token);
      return { connection, returnUrl: session.returnUrl };
    } catch (error) {
      await this.#deps.store.connectSessions.reopen(token, MAX_PASSWORD_ATTEMPTS);
      throw error;
    }
  }

  /** At the OAuth callback: where the session that started this state returns to. */
  async completeByState(state: string): Promise<{ returnUrl: string | null } | undefined> {
    const session = await this.#deps.store.connectSessions.completeByState(state);
    return session === undefined ? undefined : { returnUrl: session.returnUrl };
  }

  async #take(token: string, grant: Integration["grantType"]): Promise<ConnectSession> {
    const open = await this.#deps.store.connectSessions.find(token, this.#deps.clock.now());
    if (open === undefined) throw gone();
    const integration = await this.#integration(open.integration);
    if (integration.grantType !== grant)
      throw new TokenwardenError(
        "invalid_request",
        `this link is for the ${integration.grantType} grant`,
      );
    const session = await this.#deps.store.connectSessions.start(token, this.#deps.clock.now());
    if (session === undefined) throw gone();
    return session;
  }

  /** Creates the connection of a session that creates one; writes credentials if given. */
  async #ensureConnection(
    session: ConnectSession,
    credentials: { username?: string; password?: string },
  ): Promise<void> {
    const existing = await this.#deps.store.getConnection(session.connectionId);
    if (existing !== undefined && existing.connection.integration !== session.integration)
      throw new TokenwardenError(
        "conflict",
        `connection ${session.connectionId} now belongs to another integration`,
      );
    if (existing === undefined && !session.creates)
      throw new TokenwardenError(
        "not_found",
        `connection ${session.connectionId} no longer exists`,
      );
    if (existing !== undefined && credentials.username === undefined) return;
    const base = existing?.connection ?? {
      id: session.connectionId,
      integration: session.integration,
      environment: session.environment,
      parameters: session.parameters,
    };
    await this.#deps.writeCatalogue((catalogue) =>
      catalogue.putConnection({ ...base, ...credentials }, { announce: false }),
    );
  }

  async #integration(key: string): Promise<Integration> {
    const stored = await this.#deps.store.getIntegration(key);
    if (stored === undefined)
      throw new TokenwardenError("not_found", `integration ${key} does not exist`);
    const { grantType } = stored.integration;
    if (!(CONNECT_GRANTS as readonly string[]).includes(grantType))
      throw new TokenwardenError(
        "invalid_request",
        `integration ${key} uses ${grantType}, which needs no person: no connect link`,
      );
    return stored.integration;
  }

  async #description(session: ConnectSession): Promise<ConnectDescription> {
    const integration = await this.#integration(session.integration);
    return {
      connectionId: session.connectionId,
      environment: session.environment,
      integration: integration.key,
      displayName: integration.displayName ?? integration.key,
      grantType: integration.grantType,
      scopes: integration.scopes,
      creates: session.creates,
      expiresAt: new Date(session.expiresAt).toISOString(),
      authorizationOrigin: authorizationOrigin(integration, session),
    };
  }
}

function gone(): TokenwardenError {
  return new TokenwardenError("not_found", "this connect link is unknown, expired or already used");
}

/** `returnUrl` only on an allowed origin, compared as parsed origins, never as strings. */
export function allowedReturnUrl(text: string, origins: readonly string[]): string {
  if (!URL.canParse(text)) throw invalidConfig("returnUrl", "must be an absolute URL");
  const url = new URL(text);
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw invalidConfig("returnUrl", "must be an http(s) URL");
  const allowed = new Set(origins.filter((o) => URL.canParse(o)).map((o) => new URL(o).origin));
  if (!allowed.has(url.origin))
    throw invalidConfig(
      "returnUrl",
      `is on ${url.origin}, which is not in TOKENWARDEN_CONNECT_RETURN_ORIGINS`,
    );
  return url.toString();
}

function authorizationOrigin(integration: Integration, session: ConnectSession): string | null {
  if (integration.grantType !== "authorization_code") return null;
  try {
    const resolved = resolveIntegration(integration, {
      id: session.connectionId,
      integration: integration.key,
      environment: session.environment,
      parameters: session.parameters,
    });
    return resolved.authorizationUrl === undefined
      ? null
      : new URL(resolved.authorizationUrl).origin;
  } catch {
    return null;
  }
}
