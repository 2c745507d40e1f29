/**
 * The `McpClientStore` role: per integration, the client found at its MCP server's
 * authorization server, its secret sealed like every other (crypto.ts).
 */

import { sealingContext } from "./sealed-rows.js";
import type { SqlContext } from "./sql-context.js";
import type { McpClient, McpClientStore } from "./store.js";

export class SqlMcpClients implements McpClientStore {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async getMcpClient(integration: string): Promise<McpClient | undefined> {
    const row = await this.#ctx.db
      .selectFrom("tw_mcp_clients")
      .selectAll()
      .where("integration", "=", integration)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return {
      issuer: row.issuer,
      clientId: row.client_id,
      kind: row.kind === "document" ? "document" : "registered",
      clientAuth: row.client_auth,
      clientSecret:
        row.sealed_client_secret === null
          ? undefined
          : this.#ctx.sealer.open(
              row.sealed_client_secret,
              sealingContext.mcpClientSecret(integration),
            ),
      redirectUris: parseList(row.redirect_uris),
    };
  }

  async putMcpClient(integration: string, client: McpClient, now: number): Promise<void> {
    if (client.clientSecret !== undefined) await this.#ctx.recordKey();
    const values = {
      issuer: client.issuer,
      client_id: client.clientId,
      kind: client.kind,
      client_auth: client.clientAuth,
      sealed_client_secret:
        client.clientSecret === undefined
          ? null
          : this.#ctx.sealer.seal(client.clientSecret, sealingContext.mcpClientSecret(integration)),
      redirect_uris: JSON.stringify(client.redirectUris),
      updated_at: now,
    };
    await this.#ctx.db
      .insertInto("tw_mcp_clients")
      .values({ integration, ...values })
      .onConflict((oc) => oc.column("integration").doUpdateSet(values))
      .execute();
  }
}

function parseList(text: string): string[] {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
  } catch {
    return [];
  }
}
