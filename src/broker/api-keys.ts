/**
 * API keys for the service's `/v1` (`tw.apiKeys`): create (the key is shown once),
 * list, delete, and the ring that checks presented keys. An `admin` key may do
 * everything; a `client` key reads tokens, connections and events and uses the proxy,
 * optionally only for some integrations and environments.
 */
import { invalidConfig, TokenwardenError } from "../core/errors.js";
import { ID_PATTERN } from "../core/integration.js";
import type { ApiKeyRole, Store } from "../store/store.js";
import { generateApiKey } from "./api-key-grants.js";
import { ApiKeyRing } from "./api-key-ring.js";

export type { ApiKeyGrant, NewApiKey } from "./api-key-grants.js";
export { allows, generateApiKey, hashApiKey, isLimited } from "./api-key-grants.js";
export { ApiKeyRing } from "./api-key-ring.js";

/** A key as listed: everything but its hash. */
export interface ApiKeyView {
  id: string;
  name: string;
  role: ApiKeyRole;
  integrations: string[] | null;
  environments: string[] | null;
  createdAt: string;
}

/** A key just created: the view and, this once, the key. */
export interface CreatedApiKey extends Omit<ApiKeyView, "createdAt"> {
  key: string;
}

export interface CreateApiKeyInput {
  name: string;
  /** Default `admin`. */
  role?: string;
  /** Limits of a client key; empty or left out: none. */
  integrations?: readonly string[] | null;
  environments?: readonly string[] | null;
}

type ApiKeyStore = Pick<Store, "createApiKey" | "listApiKeys" | "deleteApiKey">;

/** Creating, listing and deleting stored keys (`tw.apiKeys`). */
export class ApiKeys {
  readonly #store: ApiKeyStore;

  constructor(store: ApiKeyStore) {
    this.#store = store;
  }

  /** Creates a key and returns it, the only time it is seen. Limits only on a client key. */
  async create(input: CreateApiKeyInput, now = Date.now()): Promise<CreatedApiKey> {
    const role = input.role ?? "admin";
    if (role !== "admin" && role !== "client")
      throw invalidConfig("role", "must be admin or client");
    const integrations = nonEmpty(input.integrations);
    const environments = nonEmpty(input.environments);
    if (role === "admin" && (integrations !== null || environments !== null)) {
      throw invalidConfig(
        "role",
        "an admin key has no limits: use --role client with --integration or --environment",
      );
    }
    for (const key of integrations ?? []) {
      if (!ID_PATTERN.test(key))
        throw invalidConfig("integration", `${key} is not an integration key`);
    }
    for (const environment of environments ?? []) {
      if (environment.length > 64) throw invalidConfig("environment", "is at most 64 characters");
    }
    const created = generateApiKey(input.name);
    await this.#store.createApiKey(
      { id: created.id, name: input.name, hash: created.hash, role, integrations, environments },
      now,
    );
    return { id: created.id, name: input.name, role, integrations, environments, key: created.key };
  }

  async list(): Promise<ApiKeyView[]> {
    return (await this.#store.listApiKeys()).map((k) => ({
      id: k.id,
      name: k.name,
      role: k.role,
      integrations: k.integrations,
      environments: k.environments,
      createdAt: new Date(k.createdAt).toISOString(),
    }));
  }

  async delete(id: string): Promise<void> {
    if (!(await this.#store.deleteApiKey(id)))
      throw new TokenwardenError("not_found", `API key ${id} does not exist`);
  }

  /**
   * The ring that checks presented keys: the stored ones, and `fixedKeys` (from
   * `TOKENWARDEN_API_KEYS`), which are admin keys.
   */
  ring(fixedKeys: readonly string[] = []): ApiKeyRing {
    return new ApiKeyRing(this.#store, fixedKeys);
  }
}

function nonEmpty(list: readonly string[] | null | undefined): string[] | null {
  return list === undefined || list === null || list.length === 0 ? null : [...list];
}
