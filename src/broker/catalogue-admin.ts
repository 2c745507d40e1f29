/**
 * The catalogue as the broker shows it: integrations, connections and the presets,
 * read as views (secrets reduced to flags, views.ts), and written through
 * catalogue.ts in one store transaction, after which this process's caches are
 * dropped and the others told (cache-sync.ts). Also each connection's scope
 * (integration and environment) for API key limits, cached.
 */
import type { Clock } from "../core/clock.js";
import { TokenwardenError } from "../core/errors.js";
import { PRESETS, type PresetEntry, presetEntry } from "../presets/catalogue.js";
import type { ConnectionFilter, Store } from "../store/store.js";
import type { CacheSync } from "./cache-sync.js";
import { type CatalogueChanges, CatalogueWriter, type PutIntegrationOptions } from "./catalogue.js";
import {
  type CatalogueDocument,
  type CatalogueImportReport,
  importCatalogue,
  validateCatalogueDocument,
} from "./catalogue-import.js";
import { connectionNotFound } from "./renewer.js";
import type { ConnectionScope, ScopeCache } from "./scope-cache.js";
import type { StatusChange } from "./status.js";
import {
  type ConnectionView,
  connectionView,
  type IntegrationView,
  integrationView,
} from "./views.js";
import { deleteAnnounced } from "./webhooks/transitions.js";

export interface CatalogueAdminDeps {
  store: Store;
  clock: Clock;
  caches: CacheSync;
  scopes: ScopeCache;
  onStatus: (change: StatusChange) => void;
}

export class CatalogueAdmin {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #caches: CacheSync;
  readonly #scopes: ScopeCache;
  readonly #onStatus: (change: StatusChange) => void;

  constructor(deps: CatalogueAdminDeps) {
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#caches = deps.caches;
    this.#scopes = deps.scopes;
    this.#onStatus = deps.onStatus;
  }

  // Integrations ------------------------------------------------------------------

  async putIntegration(
    input: unknown,
    options: PutIntegrationOptions = {},
  ): Promise<IntegrationView> {
    return this.write((catalogue) => catalogue.putIntegration(input, options));
  }

  async getIntegration(key: string): Promise<IntegrationView> {
    const stored = await this.#store.getIntegration(key);
    if (stored === undefined)
      throw new TokenwardenError("not_found", `integration ${key} does not exist`);
    return integrationView(stored);
  }

  async findIntegration(key: string): Promise<IntegrationView | undefined> {
    const stored = await this.#store.getIntegration(key);
    return stored === undefined ? undefined : integrationView(stored);
  }

  async listIntegrations(): Promise<IntegrationView[]> {
    return (await this.#store.listIntegrations()).map(integrationView);
  }

  /** Deletes an integration no connection uses; what any process cached about it goes. */
  async deleteIntegration(key: string): Promise<void> {
    if (!(await this.#store.deleteIntegration(key))) {
      throw new TokenwardenError("not_found", `integration ${key} does not exist`);
    }
    await this.#caches.integrationChanged(key);
  }

  listPresets(): PresetEntry[] {
    return PRESETS.map(presetEntry);
  }

  // Connections -------------------------------------------------------------------

  async putConnection(input: unknown): Promise<ConnectionView> {
    return this.write((catalogue) => catalogue.putConnection(input));
  }

  async getConnection(id: string): Promise<ConnectionView> {
    const stored = await this.#store.getConnection(id);
    if (stored === undefined) throw connectionNotFound(id);
    return connectionView(stored);
  }

  async findConnection(id: string): Promise<ConnectionView | undefined> {
    const stored = await this.#store.getConnection(id);
    return stored === undefined ? undefined : connectionView(stored);
  }

  async listConnections(filter: ConnectionFilter = {}): Promise<ConnectionView[]> {
    return (await this.#store.listConnections(filter)).map(connectionView);
  }

  async deleteConnection(id: string): Promise<void> {
    this.#caches.forgetConnection(id);
    if (!(await deleteAnnounced(this.#store, id, this.#clock.now()))) throw connectionNotFound(id);
    await this.#caches.publish(`connection:${id}`);
  }

  async connectionScope(id: string): Promise<ConnectionScope> {
    const scope = await this.#scopes.get(id);
    if (scope === undefined) throw connectionNotFound(id);
    return scope;
  }

  // Writes in one transaction -----------------------------------------------------

  /**
   * Runs `fn` in one transaction: all its writes land or none. Caches are dropped and
   * other processes told only after the commit. `fn` must go through the catalogue it
   * is given: on SQLite anything else waits for the commit.
   */
  async write<T>(fn: (catalogue: CatalogueWriter) => Promise<T>): Promise<T> {
    let changes: CatalogueChanges | undefined;
    const result = await this.#store.transaction(async (store) => {
      const catalogue = new CatalogueWriter(store, this.#clock);
      changes = catalogue.changes;
      return fn(catalogue);
    });
    for (const id of changes?.connections ?? []) await this.#caches.connectionChanged(id);
    for (const key of changes?.integrations ?? []) await this.#caches.integrationChanged(key);
    for (const change of changes?.statuses ?? []) this.#onStatus(change);
    return result;
  }

  /** A declarative file's entries, each validated first, then written in one transaction. */
  async applyDeclarative(
    document: CatalogueDocument,
    options: Pick<PutIntegrationOptions, "moduleHooks"> = {},
  ): Promise<CatalogueImportReport> {
    validateCatalogueDocument(document);
    return this.write((catalogue) => importCatalogue(catalogue, document, options));
  }
}
