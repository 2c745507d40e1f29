import type { Connection, ConnectionState, ConnectionStatus } from "../core/connection.js";
import type { NewTokenEvent, TokenEvent } from "../core/events.js";
import type { Integration } from "../core/integration.js";
import type { TokenSet } from "../core/token-set.js";

/**
 * Everything Tokenwarden keeps, behind one interface. The drivers seal secrets on the
 * way in and open them on the way out: above this line values are plaintext, below it
 * they are ciphertext.
 */
export interface StoredConnection {
  connection: Connection;
  state: ConnectionState;
  token: TokenSet | undefined;
  createdAt: number;
  updatedAt: number;
}

export interface ConnectionSummary {
  connection: Connection;
  state: ConnectionState;
  createdAt: number;
  updatedAt: number;
}

export interface StoredIntegration {
  integration: Integration;
  createdAt: number;
  updatedAt: number;
}

/** A state change; `token: null` forgets the token, `undefined` leaves it. */
export type StatePatch = Partial<Omit<ConnectionState, "tokenVersion">> & {
  token?: TokenSet | null;
};

export interface PendingAuthorization {
  state: string;
  connectionId: string;
  codeVerifier: string | undefined;
  redirectUri: string;
  expiresAt: number;
}

export interface ConnectionFilter {
  integration?: string;
  status?: ConnectionStatus;
  environment?: string;
}

export interface Store {
  readonly dialect: "sqlite" | "postgres";

  putIntegration(integration: Integration, now: number): Promise<{ created: boolean }>;
  getIntegration(key: string): Promise<StoredIntegration | undefined>;
  listIntegrations(): Promise<StoredIntegration[]>;
  /** Fails with `conflict` while connections use it. */
  deleteIntegration(key: string): Promise<boolean>;

  /** Writes the configuration; `initialState` is used on insert, `statePatch` on both. */
  putConnection(
    connection: Connection,
    now: number,
    initialState: ConnectionState,
    statePatch?: StatePatch,
  ): Promise<{ created: boolean }>;
  getConnection(id: string): Promise<StoredConnection | undefined>;
  listConnections(filter?: ConnectionFilter): Promise<ConnectionSummary[]>;
  deleteConnection(id: string): Promise<boolean>;

  /**
   * Writes state and token in one statement (a rotated refresh token lands with its
   * access token or not at all). Returns the new token version.
   */
  updateState(id: string, patch: StatePatch, now: number): Promise<number>;
  /** The cheap read a waiting process polls: has a new token been written? */
  readTokenVersion(
    id: string,
  ): Promise<{ tokenVersion: number; status: ConnectionStatus } | undefined>;

  /** Claims the refresh lease if it is free, expired or already ours. */
  tryClaimLease(id: string, holder: string, until: number, now: number): Promise<boolean>;
  releaseLease(id: string, holder: string): Promise<void>;

  /** Connections whose next refresh is due by `dueBy`, soonest first. */
  dueConnections(
    dueBy: number,
    limit: number,
  ): Promise<Array<{ id: string; nextRefreshAt: number }>>;

  appendEvent(event: NewTokenEvent): Promise<TokenEvent>;
  /** Newest first; `beforeId` pages backwards. */
  listEvents(
    connectionId: string,
    options: { limit: number; beforeId?: number },
  ): Promise<TokenEvent[]>;

  putPendingAuthorization(pending: PendingAuthorization): Promise<void>;
  /** Removes and returns it: a state can be used once. */
  takePendingAuthorization(state: string, now: number): Promise<PendingAuthorization | undefined>;

  /** For readiness: the database answers and every migration has run. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
