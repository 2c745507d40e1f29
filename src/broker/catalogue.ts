/**
 * Writes to the catalogue (integrations and connections), run by the broker inside one
 * store transaction: an import file is written whole or not at all. The writer
 * collects what changed; the broker drops its caches and tells other processes only
 * after the commit.
 *
 * Secrets are bound to the places they were stored for (SECURITY.md,
 * core/origins.ts): a change that would send a stored secret somewhere new must carry
 * it again. For an integration PUT that moves its destinations:
 * - its own secrets (client secret, tls.key) must be in the request;
 * - its connections' token sets are forgotten (issued by the old server, never sent to
 *   the new one), each with the reason in `lastError`;
 * - its connections' configured secrets (client secret, password, starting refresh
 *   token) are refused, naming `connections.<id>.<field>`, unless the same transaction
 *   sends them again (an import file carrying the connection with them). Forgetting
 *   them instead would leave connections silently unusable (a password grant with no
 *   password); refusing changes nothing and says exactly what to send.
 */
import type { Clock } from "../core/clock.js";
import {
  CONNECTION_SECRET_FIELDS,
  type Connection,
  checkConnectionAgainst,
  parseConnection,
} from "../core/connection.js";
import { type FieldIssue, invalidConfig, TokenwardenError } from "../core/errors.js";
import { type Integration, isUrlHook, parseIntegration } from "../core/integration.js";
import { newDestinations, secretDestinations } from "../core/origins.js";
import { canRenewUnattended } from "../core/refresh-policy.js";
import { type ResolvedIntegration, resolveIntegration } from "../core/resolve.js";
import { INTEGRATION_SECRET_PATHS, mergeSecretInput, secretsOf } from "../core/secrets.js";
import { afterConfigChange, initialState, type StatePatch, startOver } from "../core/state.js";
import { applyPreset } from "../presets/catalogue.js";
import type { Store, StoredConnection } from "../store/store.js";
import { confineModuleHook, type ModuleHookPolicy } from "./hook-policy.js";
import { type StatusChange, statusChange } from "./status.js";
import {
  type ConnectionView,
  connectionView,
  type IntegrationView,
  integrationView,
} from "./views.js";
import { raiseEvents, writeState } from "./webhooks/transitions.js";

export interface PutIntegrationOptions {
  /**
   * Connection secrets a later write in the same transaction sends again (an import
   * file): connection id to field names.
   */
  resentConnectionSecrets?: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * Through the service: a new module `refreshHook` must lie in this folder
   * (hook-policy.ts) and is stored as its real path; one left as it was is kept.
   */
  moduleHooks?: ModuleHookPolicy;
}

export interface CatalogueChanges {
  /** Connections whose cached token must be dropped. */
  connections: Set<string>;
  /** Integrations whose connections' cached tokens must be dropped. */
  integrations: Set<string>;
  /** Statuses the writes changed: told only after the commit. */
  statuses: StatusChange[];
}

export class CatalogueWriter {
  readonly changes: CatalogueChanges = {
    connections: new Set(),
    integrations: new Set(),
    statuses: [],
  };
  readonly #store: Store;
  readonly #clock: Clock;

  /** `store` is the transaction's store: the writer never reads or writes outside it. */
  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /**
   * Creates or replaces an integration. A secret left out keeps the stored one
   * (secrets are write-only, so an editor cannot send it back); `null` removes it.
   */
  async putIntegration(
    input: unknown,
    options: PutIntegrationOptions = {},
  ): Promise<IntegrationView> {
    const key = stringField(input, "key");
    const existing = key === undefined ? undefined : await this.#store.getIntegration(key);
    const stored =
      existing === undefined ? {} : secretsOf(existing.integration, INTEGRATION_SECRET_PATHS);
    const { value, resent } = mergeSecretInput(input, INTEGRATION_SECRET_PATHS, stored);
    const integration = parseIntegration(applyPreset(value));
    const hook = integration.refreshHook;
    if (
      options.moduleHooks !== undefined &&
      hook !== undefined &&
      !isUrlHook(hook) &&
      hook !== existing?.integration.refreshHook
    ) {
      // Before the destinations are compared: the real path is where it will run.
      integration.refreshHook = await confineModuleHook(hook, options.moduleHooks);
    }
    const now = this.#clock.now();
    const patches = new Map<string, StatePatch>();
    const before = new Map<string, StoredConnection>();
    if (existing !== undefined) {
      const moved = newDestinations(
        secretDestinations(existing.integration),
        secretDestinations(integration),
      );
      if (moved.length > 0) {
        const kept = Object.keys(secretsOf(integration, INTEGRATION_SECRET_PATHS)).filter(
          (path) => !resent.has(path),
        );
        refuseKept(kept, moved);
      }
      const refused: string[] = [];
      for (const { connection } of await this.#store.listConnections({
        integration: integration.key,
      })) {
        // Every connection must still resolve under the new settings.
        const after = prefixed(`connection ${connection.id}`, () =>
          resolveIntegration(integration, connection),
        );
        const movedHere = newDestinations(
          destinationsOf(existing.integration, connection),
          secretDestinations(after),
        );
        const current = await this.#store.getConnection(connection.id);
        if (current === undefined) continue;
        before.set(connection.id, current);
        if (movedHere.length > 0) {
          const resentHere = options.resentConnectionSecrets?.get(connection.id);
          for (const field of CONNECTION_SECRET_FIELDS) {
            if (connection[field] !== undefined && resentHere?.has(field) !== true)
              refused.push(`connections.${connection.id}.${field}`);
          }
          if (current.token !== undefined)
            patches.set(connection.id, forgetToken(integration, connection, movedHere, now));
        } else {
          const patch = afterConfigChange(integration, current, current.connection, now);
          if (Object.keys(patch).length > 0) patches.set(connection.id, patch);
        }
      }
      refuseKept(refused, moved.length > 0 ? moved : ["a new destination"]);
    }
    await this.#store.putIntegration(integration, now);
    for (const [id, patch] of patches) {
      await writeState(this.#store, { id, patch, now, cause: "config" });
      this.changes.connections.add(id);
    }
    for (const [id, patch] of patches) this.#changed(before.get(id), patch);
    if (existing !== undefined) this.changes.integrations.add(integration.key);
    const written = await this.#store.getIntegration(integration.key);
    return integrationView(written as NonNullable<typeof written>);
  }

  /**
   * Creates or replaces a connection. As with integrations, secrets left out are kept
   * and `null` removes one. Validated against its integration before anything is
   * written. A connection whose destinations move (another integration, or a parameter
   * in a URL's host) must send its stored secrets again, and forgets its token set.
   */
  async putConnection(
    input: unknown,
    options: { announce?: boolean } = {},
  ): Promise<ConnectionView> {
    const id = stringField(input, "id");
    const existing = id === undefined ? undefined : await this.#store.getConnection(id);
    const stored =
      existing === undefined ? {} : secretsOf(existing.connection, CONNECTION_SECRET_FIELDS);
    const { value, resent } = mergeSecretInput(input, CONNECTION_SECRET_FIELDS, stored);
    const connection = parseConnection(value);
    const storedIntegration = await this.#store.getIntegration(connection.integration);
    if (storedIntegration === undefined) {
      throw invalidConfig("integration", `${connection.integration} does not exist`);
    }
    const integration = storedIntegration.integration;
    checkConnectionAgainst(integration, connection);
    const resolved = resolveIntegration(integration, connection);

    const now = this.#clock.now();
    const initial = initialState(integration, now);
    let patch: StatePatch = {};
    if (existing !== undefined) {
      const before =
        existing.connection.integration === integration.key
          ? integration
          : (await this.#store.getIntegration(existing.connection.integration))?.integration;
      const moved =
        before === undefined
          ? ["another integration"]
          : newDestinations(
              destinationsOf(before, existing.connection),
              secretDestinations(resolved),
            );
      if (moved.length > 0) {
        refuseKept(
          CONNECTION_SECRET_FIELDS.filter((f) => connection[f] !== undefined && !resent.has(f)),
          moved,
        );
      }
      // The token set was issued for where the connection pointed: never sent elsewhere.
      patch =
        moved.length > 0
          ? startOver(integration, now)
          : afterConfigChange(integration, existing, connection, now);
    }
    await this.#store.putConnection(connection, now, initial, patch);
    // `announce: false`: a connect link writing credentials, whose authorization follows.
    if (existing !== undefined && patch.status !== undefined && options.announce !== false) {
      // In the catalogue's transaction, as the write it announces.
      await raiseEvents(
        this.#store,
        {
          connectionId: connection.id,
          integration: connection.integration,
          environment: connection.environment,
        },
        { previousStatus: existing.state.status, status: patch.status, cause: "config" },
        now,
      );
    }
    if (existing !== undefined) this.#changed({ ...existing, connection }, patch);
    this.changes.connections.add(connection.id);
    const written = await this.#store.getConnection(connection.id);
    return connectionView(written as StoredConnection);
  }

  #changed(was: StoredConnection | undefined, patch: StatePatch): void {
    if (was === undefined) return;
    const change = statusChange(was.connection, was.state.status, patch);
    if (change !== undefined) this.changes.statuses.push(change);
  }
}

/** A token set forgotten because its integration now points elsewhere, with the reason kept. */
function forgetToken(
  integration: Integration,
  connection: Connection,
  moved: string[],
  now: number,
): StatePatch {
  const initial = initialState(integration, now);
  const renewable = canRenewUnattended(integration, undefined, connection.refreshToken);
  const base: StatePatch = {
    token: null,
    expiresAt: null,
    scope: null,
    failureCount: 0,
    lastError: null,
    status: initial.status,
    nextRefreshAt: initial.nextRefreshAt,
  };
  if (renewable) return base;
  return {
    ...base,
    status: "needs_reauth",
    nextRefreshAt: null,
    lastError: {
      code: "needs_reauth",
      message: `the token was forgotten: integration ${integration.key} now sends tokens to ${moved.join(", ")}, where it was not issued; authorize again`,
      at: now,
    },
  };
}

/** Where a connection's secrets went under an integration; unknown when it no longer resolved. */
function destinationsOf(integration: Integration, connection: Connection): Set<string> {
  let resolved: ResolvedIntegration;
  try {
    resolved = resolveIntegration(integration, connection);
  } catch {
    return new Set();
  }
  return secretDestinations(resolved);
}

/** `invalid_config` naming each stored secret the request would send somewhere new. */
function refuseKept(fields: readonly string[], moved: readonly string[]): void {
  if (fields.length === 0) return;
  const reason = `is stored for other destinations; this change sends it to ${moved.join(", ")}: send it again in the same request, or null to remove it`;
  const issues: FieldIssue[] = fields.map((field) => ({ field, message: reason }));
  const more = fields.length > 1 ? ` (and ${fields.length - 1} more)` : "";
  throw new TokenwardenError("invalid_config", `${fields[0]}: ${reason}${more}`, {
    field: fields[0] as string,
    issues,
  });
}

/** Runs `fn`, prefixing the message of an `invalid_config` it throws. */
function prefixed<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof TokenwardenError && error.code === "invalid_config") {
      throw new TokenwardenError("invalid_config", `${prefix}: ${error.message}`, {
        ...(error.field === undefined ? {} : { field: error.field }),
      });
    }
    throw error;
  }
}

function stringField(input: unknown, field: string): string | undefined {
  if (input === null || typeof input !== "object" || Array.isArray(input)) return undefined;
  const value = (input as Record<string, unknown>)[field];
  return typeof value === "string" ? value : undefined;
}
