/**
 * Tokenwarden's public library surface, curated: what is exported here is supported
 * and keeps its shape across minor versions; everything else is internal and may move.
 * The broker (`Tokenwarden`) is the product; the model, the refresh policy and the
 * OAuth 2.0 protocol client are exported for programs that want the pieces.
 */

// The broker -----------------------------------------------------------------------
export type {
  AccessToken,
  ApiRequest,
  ApiResponse,
  ConnectionView,
  IntegrationView,
  RefreshHookInput,
  SchedulerOptions,
  SecretFlag,
} from "./broker/index.js";
export type { StatusChange } from "./broker/status.js";
export {
  type ConnectionStatus,
  type FetchInit,
  type GetTokenOptions,
  Tokenwarden,
  type TokenwardenOptions,
  type TokenwardenWarning,
} from "./broker/tokenwarden.js";

// Errors, events and time ------------------------------------------------------------
export { type Clock, ManualClock, systemClock } from "./core/clock.js";
// The model ---------------------------------------------------------------------------
export {
  type Connection,
  type ConnectionInput,
  connectionSchema,
  parseConnection,
} from "./core/connection.js";
export {
  ERROR_CODES,
  type ErrorCode,
  type FieldIssue,
  isTokenwardenError,
  TokenwardenError,
} from "./core/errors.js";
export {
  EVENT_TRIGGERS,
  type EventAction,
  type EventOutcome,
  type EventTrigger,
  type TokenEvent,
} from "./core/events.js";
export {
  type Integration,
  type IntegrationInput,
  integrationSchema,
  parseIntegration,
} from "./core/integration.js";
export {
  backoffMs,
  canRenewUnattended,
  expiryFor,
  isInRefreshWindow,
  isUsable,
  refreshLeadMs,
  refreshWindowOpensAt,
} from "./core/refresh-policy.js";
export { type ResolvedIntegration, resolveIntegration } from "./core/resolve.js";
export type { TokenSet } from "./core/token-set.js";

// The OAuth 2.0 protocol client ----------------------------------------------------
export {
  type AuthorizationRequest,
  buildAuthorizationRequest,
  readAuthorizationResponse,
} from "./oauth/authorization.js";
export { type DiscoveredServer, discoverServer } from "./oauth/discovery.js";
export { HttpClient, type HttpClientOptions } from "./oauth/http.js";
export { type Introspection, introspectToken } from "./oauth/introspection.js";
export { revokeToken } from "./oauth/revocation.js";
export {
  exchangeAuthorizationCode,
  type ProtocolOptions,
  refreshAccessToken,
  requestClientCredentialsGrant,
  requestPasswordGrant,
} from "./oauth/token-endpoint.js";

// The preset catalogue ---------------------------------------------------------------
export { PRESETS, type Preset, type PresetEntry } from "./presets/catalogue.js";

// Storage -------------------------------------------------------------------------------
export { DEFAULT_DATABASE_URL, type OpenStoreOptions, openStore } from "./store/open.js";
export type { Store } from "./store/store.js";
