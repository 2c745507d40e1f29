/**
 * The service's API keys (the `ApiKeyStore` role): a hash per key, never the key, with
 * a client key's limits as JSON lists.
 */
import type { SqlContext } from "./sql-context.js";
import type { ApiKeyStore, NewStoredApiKey, StoredApiKey } from "./store.js";

export class SqlApiKeys implements ApiKeyStore {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async createApiKey(key: NewStoredApiKey, now: number): Promise<void> {
    await this.#ctx.db
      .insertInto("tw_api_keys")
      .values({
        id: key.id,
        name: key.name,
        hash: key.hash,
        role: key.role ?? "admin",
        integrations: listColumn(key.integrations),
        environments: listColumn(key.environments),
        created_at: now,
      })
      .execute();
  }

  async listApiKeys(): Promise<StoredApiKey[]> {
    const rows = await this.#ctx.db
      .selectFrom("tw_api_keys")
      .selectAll()
      .orderBy("created_at")
      .execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      hash: r.hash,
      // Anything but a known role is read as the narrower one.
      role: r.role === "admin" ? "admin" : "client",
      integrations: listOfColumn(r.integrations),
      environments: listOfColumn(r.environments),
      createdAt: Number(r.created_at),
    }));
  }

  async deleteApiKey(id: string): Promise<boolean> {
    const result = await this.#ctx.db
      .deleteFrom("tw_api_keys")
      .where("id", "=", id)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

/** A list limit as a JSON column; `null` (no limit) stays NULL. */
function listColumn(list: readonly string[] | null | undefined): string | null {
  return list === undefined || list === null ? null : JSON.stringify(list);
}

function listOfColumn(value: string | null): string[] | null {
  if (value === null) return null;
  const parsed: unknown = JSON.parse(value);
  // A limit that cannot be read limits to nothing rather than to everything.
  return Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === "string") : [];
}
