/**
 * What a token endpoint (or a refresh hook) gave us, normalized. `raw` keeps the
 * whole response, because some platforms hand extra fields (instance URLs, ids) to
 * the workflow (seeds 002 and 004).
 */
export interface TokenSet {
  accessToken: string;
  /** `Bearer` when the server left it out. */
  tokenType: string;
  refreshToken?: string;
  scope?: string;
  /** When the response arrived (epoch ms, by the injected clock). */
  issuedAt: number;
  /** When the access token stops working (epoch ms); `null` when it has no known end. */
  expiresAt: number | null;
  raw: Record<string, unknown>;
  /** HTTP status of the response it came in, for the event record (absent for hooks). */
  httpStatus?: number;
}

/** Response fields that are secrets; `publicResponseFields` leaves them out. */
const SECRET_RESPONSE_FIELDS = new Set(["access_token", "refresh_token", "id_token"]);

/** The server's response without its secrets, safe for an API response or an event. */
export function publicResponseFields(token: TokenSet): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(token.raw)) {
    if (!SECRET_RESPONSE_FIELDS.has(key)) out[key] = value;
  }
  return out;
}

/** RFC 6749 §6: a refresh response without a refresh token keeps the old one. */
export function carryRefreshToken(next: TokenSet, previous: TokenSet | undefined): TokenSet {
  if (next.refreshToken !== undefined || previous?.refreshToken === undefined) return next;
  return { ...next, refreshToken: previous.refreshToken };
}
