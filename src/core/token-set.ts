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
  /** When the refresh token stops working (`refresh_token_expires_in`), if the server said. */
  refreshTokenExpiresAt?: number;
  raw: Record<string, unknown>;
  /** HTTP status of the response it came in, for the event record (absent for hooks). */
  httpStatus?: number;
}

/**
 * RFC 6749 §6: a refresh response without a refresh token means the old one stays
 * good, so it is carried into the new token set.
 */
export function carryRefreshToken(
  next: TokenSet,
  previousRefreshToken: string | undefined,
  previousRefreshTokenExpiresAt?: number,
): TokenSet {
  if (next.refreshToken !== undefined || previousRefreshToken === undefined) return next;
  // The same refresh token keeps its own end, unless the server restated it.
  const carried: TokenSet = { ...next, refreshToken: previousRefreshToken };
  if (carried.refreshTokenExpiresAt === undefined && previousRefreshTokenExpiresAt !== undefined)
    carried.refreshTokenExpiresAt = previousRefreshTokenExpiresAt;
  return carried;
}
