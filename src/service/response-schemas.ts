/**
 * What the service answers, as zod schemas: the broker's views (secrets only as
 * `{ set }`), the error body, and the small envelopes around them. /openapi.json
 * describes every response from these (openapi.ts), and the type checks at the end of
 * this module fail the build if a view and its schema ever disagree.
 */

import { z } from "zod";
import type { ApiKeyView } from "../broker/api-keys.js";
import type { AccessToken, ConnectionView, IntegrationView } from "../broker/views.js";
import type { DeliveryView, WebhookView } from "../broker/webhooks/admin.js";
import { CONNECTION_STATUSES, connectionSchema } from "../core/connection.js";
import { ERROR_CODES } from "../core/errors.js";
import type { TokenEvent } from "../core/events.js";
import { EVENT_TRIGGERS } from "../core/events.js";
import { GRANT_TYPES, integrationObjectSchema } from "../core/integration.js";
import { LIFECYCLE_EVENT_TYPES } from "../core/lifecycle.js";
import { DELIVERY_STATUSES } from "../core/webhook.js";
import { QUIRK_KINDS } from "../presets/catalogue.js";

const secretFlag = z.strictObject({ set: z.boolean() }).meta({ id: "SecretFlag" });
const isoTime = z.string().describe("ISO 8601");

export const integrationViewSchema = z
  .strictObject({
    ...integrationObjectSchema.shape,
    // Always there once written (an MCP server's integration gets authorization_code).
    grantType: z.enum(GRANT_TYPES),
    clientSecret: secretFlag,
    clientPrivateKey: secretFlag,
    // Their output is built by a transform, which JSON Schema cannot follow: said here.
    tokenPlacement: z.strictObject({
      in: z.enum(["header", "query"]),
      name: z.string(),
      template: z.string(),
    }),
    allowedApiOrigins: z.array(z.string()),
    tls: z.strictObject({
      mode: z.enum(["verify", "trust", "off"]),
      ca: z.string().optional(),
      cert: z.string().optional(),
      key: secretFlag,
    }),
    createdAt: isoTime,
    updatedAt: isoTime,
  })
  .meta({ id: "IntegrationView" });

const errorSummary = z.strictObject({
  code: z.string(),
  message: z.string(),
  oauthError: z.string().optional(),
  oauthErrorDescription: z.string().optional(),
  status: z.number().int().optional(),
  at: isoTime,
});

export const connectionViewSchema = z
  .strictObject({
    ...connectionSchema.shape,
    clientSecret: secretFlag,
    password: secretFlag,
    refreshToken: secretFlag,
    subjectToken: secretFlag,
    status: z.enum(CONNECTION_STATUSES),
    expiresAt: isoTime.nullable(),
    scope: z.string().nullable(),
    lastRefreshAt: isoTime.nullable(),
    nextRefreshAt: isoTime.nullable(),
    lastError: errorSummary.nullable(),
    refreshTokenExpiresAt: isoTime.nullable(),
    createdAt: isoTime,
    updatedAt: isoTime,
  })
  .meta({ id: "ConnectionView" });

export const accessTokenSchema = z.strictObject({
  accessToken: z.string(),
  tokenType: z.string(),
  expiresAt: isoTime.nullable(),
  scope: z.string().nullable(),
  header: z.strictObject({ name: z.string(), value: z.string() }),
  extra: z.record(z.string(), z.unknown()),
});

export const tokenEventSchema = z
  .strictObject({
    id: z.number().int(),
    at: isoTime,
    connectionId: z.string(),
    integration: z.string(),
    trigger: z.enum(EVENT_TRIGGERS),
    action: z.enum(["obtain", "refresh", "hook", "revoke", "authorize"]),
    outcome: z.enum(["success", "failure"]),
    httpStatus: z.number().int().nullable(),
    errorCode: z.string().nullable(),
    errorDescription: z.string().nullable(),
    durationMs: z.number(),
  })
  .meta({ id: "TokenEvent" });

export const apiKeyViewSchema = z
  .strictObject({
    id: z.string(),
    name: z.string(),
    role: z.enum(["admin", "client"]),
    integrations: z.array(z.string()).nullable().describe("null: every integration"),
    environments: z.array(z.string()).nullable().describe("null: every environment"),
    createdAt: isoTime,
  })
  .meta({ id: "ApiKeyView" });

/** `{ error: { code, message, ... } }`: every failure, never a secret (errors.ts). */
export const errorBodySchema = z.strictObject({
  error: z.strictObject({
    code: z.enum(ERROR_CODES),
    message: z.string(),
    field: z.string().optional().describe("The input field at fault, as a dotted path"),
    issues: z
      .array(z.strictObject({ field: z.string(), message: z.string() }))
      .optional()
      .describe("Every problem found in one input"),
    oauthError: z.string().optional().describe("RFC 6749 §5.2 error from the server"),
    oauthErrorDescription: z.string().optional(),
    upstreamStatus: z
      .number()
      .int()
      .optional()
      .describe("The HTTP status of the server's answer that caused it"),
  }),
});

const webhookViewSchema = z
  .strictObject({
    id: z.string(),
    url: z.string(),
    events: z.array(z.enum(LIFECYCLE_EVENT_TYPES)),
    enabled: z.boolean(),
    createdAt: isoTime,
    updatedAt: isoTime,
    secret: z
      .string()
      .optional()
      .describe("The signing secret (whsec_...): only in the answer that creates the webhook"),
  })
  .meta({ id: "WebhookView" });

const deliveryViewSchema = z
  .strictObject({
    id: z.number().int(),
    messageId: z.string(),
    webhookId: z.string(),
    type: z.string(),
    connectionId: z.string(),
    status: z.enum(DELIVERY_STATUSES),
    attempts: z.number().int(),
    nextAttemptAt: isoTime.nullable(),
    createdAt: isoTime,
    lastAttemptAt: isoTime.nullable(),
    lastHttpStatus: z.number().int().nullable(),
    lastError: z.string().nullable(),
    deliveredAt: isoTime.nullable(),
  })
  .meta({ id: "DeliveryView" });

/** A preset as listed: what it says about itself, and the integration fields it sets. */
const presetEntrySchema = z
  .looseObject({
    name: z.string(),
    displayName: z.string(),
    docsUrl: z.string(),
    notes: z.array(z.string()),
    quirks: z.array(z.enum(QUIRK_KINDS)),
  })
  .describe("Also the integration fields the preset sets (never a client credential)")
  .meta({ id: "PresetEntry" });

/** Every schema /openapi.json names as a component, by its name there. */
export const RESPONSE_COMPONENTS = {
  ErrorBody: errorBodySchema,
  IntegrationView: integrationViewSchema,
  IntegrationList: z.strictObject({ integrations: z.array(integrationViewSchema) }),
  ConnectionView: connectionViewSchema,
  ConnectionList: z.strictObject({ connections: z.array(connectionViewSchema) }),
  AccessToken: accessTokenSchema,
  TokenEvent: tokenEventSchema,
  EventPage: z.strictObject({
    events: z.array(tokenEventSchema),
    next: z.number().int().nullable().describe("Pass as ?before= for the next page"),
  }),
  ClientMetadataDocument: z
    .strictObject({
      client_id: z.string().describe("This document's own https URL"),
      client_name: z.string(),
      redirect_uris: z.array(z.string()),
      grant_types: z.array(z.string()),
      response_types: z.array(z.string()),
      token_endpoint_auth_method: z.literal("none"),
    })
    .describe(
      "The OAuth client ID metadata document an MCP server's authorization server reads: its URL is Tokenwarden's client id there",
    ),
  AuthorizationStart: z.strictObject({
    url: z.string(),
    expiresAt: isoTime,
    redirectUri: z.string(),
  }),
  DeviceAuthorization: z.strictObject({
    userCode: z.string().describe("What the person enters at verificationUri"),
    verificationUri: z.string(),
    verificationUriComplete: z.string().nullable(),
    expiresAt: isoTime,
    interval: z.number().int().describe("Seconds between polls of the token endpoint"),
  }),
  DpopProof: z.strictObject({
    proof: z.string().describe("The DPoP header's value (a signed JWT) for that one request"),
  }),
  AdminSchemas: z.object({
    integration: z.record(z.string(), z.unknown()),
    connection: z.record(z.string(), z.unknown()),
    redirectUri: z.string(),
    secretFields: z.strictObject({
      integration: z.array(z.string()),
      connection: z.array(z.string()),
    }),
    grantFields: z.record(z.string(), z.unknown()),
    statuses: z.array(z.enum(CONNECTION_STATUSES)),
    actions: z.record(z.string(), z.record(z.string(), z.unknown())),
  }),
  WebhookView: webhookViewSchema,
  WebhookList: z.strictObject({ webhooks: z.array(webhookViewSchema) }),
  DeliveryPage: z.strictObject({
    deliveries: z.array(deliveryViewSchema),
    next: z.number().int().nullable().describe("Pass as ?before= for the next page"),
  }),
  ConnectSession: z.strictObject({
    url: z.string().describe("<public-url>/connect/<token>: single use, no API key needed"),
    expiresAt: isoTime,
    connectionId: z.string(),
  }),
  PresetEntry: presetEntrySchema,
  PresetList: z.strictObject({ presets: z.array(presetEntrySchema) }),
  ApiKeyView: apiKeyViewSchema,
  ApiKeyList: z.strictObject({ apiKeys: z.array(apiKeyViewSchema) }),
  CreatedApiKey: z.strictObject({
    ...apiKeyViewSchema.omit({ createdAt: true }).shape,
    key: z.string().describe("The key itself: shown only in this answer"),
  }),
  ImportReport: z.strictObject({
    integrations: z.number().int().describe("Integrations written"),
    connections: z.number().int().describe("Connections written"),
  }),
  Health: z.strictObject({ status: z.literal("ok") }),
  Readiness: z.strictObject({
    status: z.enum(["ready", "unavailable"]),
    database: z.enum(["sqlite", "postgres"]),
  }),
} satisfies Record<string, z.ZodType>;

export type ResponseComponent = keyof typeof RESPONSE_COMPONENTS;

// Each view and its schema, both ways: a field added to one and not the other fails here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const views: [
  Same<z.output<typeof accessTokenSchema>, AccessToken>,
  Same<z.output<typeof tokenEventSchema>, TokenEvent>,
  Same<z.output<typeof connectionViewSchema>, ConnectionView>,
  Same<z.output<typeof integrationViewSchema>, IntegrationView>,
  Same<z.output<typeof webhookViewSchema>, WebhookView>,
  Same<z.output<typeof deliveryViewSchema>, DeliveryView>,
  Same<z.output<typeof apiKeyViewSchema>, ApiKeyView>,
] = [true, true, true, true, true, true, true];
void views;
