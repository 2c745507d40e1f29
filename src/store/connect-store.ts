/**
 * Connect sessions: a link's token is kept only as its
 * SHA-256, so a database reader cannot open a session. Each step is one conditional
 * statement, so two requests racing on one link cannot both pass.
 */
import { createHash } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import type { ConnectSessionsTable, Database } from "./schema.js";

export interface ConnectSession {
  connectionId: string;
  integration: string;
  environment: string;
  parameters: Record<string, string>;
  /** The session creates the connection (else it re-authorizes an existing one). */
  creates: boolean;
  returnUrl: string | null;
  status: "open" | "started" | "completed";
  attempts: number;
  expiresAt: number;
  createdAt: number;
}

export type NewConnectSession = Omit<ConnectSession, "status" | "attempts">;

export function hashSecretToken(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

export class ConnectSessionStore {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async create(token: string, session: NewConnectSession): Promise<void> {
    // Expired sessions are swept here rather than by a timer.
    await this.#db
      .deleteFrom("tw_connect_sessions")
      .where("expires_at", "<=", session.createdAt)
      .execute();
    await this.#db
      .insertInto("tw_connect_sessions")
      .values({
        token_hash: hashSecretToken(token),
        connection_id: session.connectionId,
        integration: session.integration,
        environment: session.environment,
        parameters: JSON.stringify(session.parameters),
        creates: session.creates ? 1 : 0,
        return_url: session.returnUrl,
        status: "open",
        attempts: 0,
        expires_at: session.expiresAt,
        created_at: session.createdAt,
      })
      .execute();
  }

  /** An open, unexpired session, or `undefined`. */
  async find(token: string, now: number): Promise<ConnectSession | undefined> {
    const row = await this.#db
      .selectFrom("tw_connect_sessions")
      .selectAll()
      .where("token_hash", "=", hashSecretToken(token))
      .where("status", "=", "open")
      .where("expires_at", ">", now)
      .executeTakeFirst();
    return row === undefined ? undefined : sessionFrom(row);
  }

  /** Takes an open, unexpired session for one attempt: a second taker gets `undefined`. */
  async start(token: string, now: number): Promise<ConnectSession | undefined> {
    const row = await this.#db
      .updateTable("tw_connect_sessions")
      .set({ status: "started" })
      .where("token_hash", "=", hashSecretToken(token))
      .where("status", "=", "open")
      .where("expires_at", ">", now)
      .returningAll()
      .executeTakeFirst();
    return row === undefined ? undefined : sessionFrom(row);
  }

  /** Notes the authorization state the session sent the person to the server with. */
  async attachState(token: string, state: string): Promise<void> {
    await this.#db
      .updateTable("tw_connect_sessions")
      .set({ state_hash: hashSecretToken(state) })
      .where("token_hash", "=", hashSecretToken(token))
      .execute();
  }

  /** A failed password attempt: open again while attempts remain, else closed for good. */
  async reopen(token: string, maxAttempts: number): Promise<boolean> {
    const row = await this.#db
      .updateTable("tw_connect_sessions")
      .set((eb) => ({ attempts: eb("attempts", "+", 1), status: "open" }))
      .where("token_hash", "=", hashSecretToken(token))
      .where("status", "=", "started")
      .where("attempts", "<", maxAttempts - 1)
      .returning("attempts")
      .executeTakeFirst();
    if (row !== undefined) return true;
    await this.#db
      .updateTable("tw_connect_sessions")
      .set({ status: "completed" })
      .where("token_hash", "=", hashSecretToken(token))
      .execute();
    return false;
  }

  async complete(token: string): Promise<ConnectSession | undefined> {
    const row = await this.#db
      .updateTable("tw_connect_sessions")
      .set({ status: "completed" })
      .where("token_hash", "=", hashSecretToken(token))
      .where("status", "=", "started")
      .returningAll()
      .executeTakeFirst();
    return row === undefined ? undefined : sessionFrom(row);
  }

  /** At the OAuth callback: the started session this state belongs to, now completed. */
  async completeByState(state: string): Promise<ConnectSession | undefined> {
    const row = await this.#db
      .updateTable("tw_connect_sessions")
      .set({ status: "completed" })
      .where("state_hash", "=", hashSecretToken(state))
      .where("status", "=", "started")
      .returningAll()
      .executeTakeFirst();
    return row === undefined ? undefined : sessionFrom(row);
  }
}

function sessionFrom(row: Selectable<ConnectSessionsTable>): ConnectSession {
  const parameters: unknown = JSON.parse(row.parameters);
  return {
    connectionId: row.connection_id,
    integration: row.integration,
    environment: row.environment,
    parameters:
      parameters !== null && typeof parameters === "object"
        ? (parameters as Record<string, string>)
        : {},
    creates: Number(row.creates) === 1,
    returnUrl: row.return_url,
    status: row.status as ConnectSession["status"],
    attempts: Number(row.attempts),
    expiresAt: Number(row.expires_at),
    createdAt: Number(row.created_at),
  };
}
