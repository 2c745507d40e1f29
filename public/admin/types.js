// @ts-check
/**
 * The admin page's types. The API's own shapes come from the server's TypeScript, so
 * the page and the service cannot drift apart unnoticed (`npm run typecheck` checks
 * the page with tsconfig.admin.json).
 *
 * @typedef {import("../../src/broker/views.js").ConnectionView} ConnectionView
 * @typedef {import("../../src/broker/views.js").IntegrationView} IntegrationView
 * @typedef {import("../../src/core/events.js").TokenEvent} TokenEvent
 * @typedef {import("../../src/core/connection.js").ConnectionStatus} ConnectionStatus
 * @typedef {import("../../src/core/integration.js").GrantType} GrantType
 * @typedef {import("../../src/core/grants.js").ConnectionActions} ConnectionActions
 *
 * @typedef {object} JsonSchema One property of a JSON Schema, as much as the forms read.
 * @property {string} [type]
 * @property {unknown[]} [enum]
 * @property {unknown} [default]
 * @property {string} [description]
 * @property {JsonSchema} [items]
 * @property {JsonSchema[]} [anyOf]
 * @property {Record<string, JsonSchema>} [properties]
 * @property {string[]} [required]
 *
 * @typedef {JsonSchema & { properties: Record<string, JsonSchema> }} ObjectSchema
 *
 * @typedef {Omit<ReturnType<typeof import("../../src/service/admin-schemas.js").adminSchemas>,
 *   "integration" | "connection"> & { integration: ObjectSchema, connection: ObjectSchema }} Schemas
 *   What `GET /v1/schemas` answers.
 *
 * @typedef {"integration" | "connection"} Kind
 *
 * @typedef {object} FormContext The form being edited.
 * @property {Kind} kind
 * @property {ObjectSchema} schema
 * @property {Record<string, unknown> | undefined} existing The current view, when editing.
 *
 * @typedef {"sign-in" | "connections" | "integrations" | "webhooks" | "detail"} Page
 *
 * @typedef {object} App Everything the page holds, in one object passed to each function.
 * @property {string | null} key The API key (also in sessionStorage, this tab only).
 * @property {Schemas | null} schemas
 * @property {string} redirectUri
 * @property {IntegrationView[]} integrations
 * @property {ConnectionView[]} connections
 * @property {string | null} detailId The connection shown, on its page.
 * @property {TokenEvent[]} events That connection's history, newest first.
 * @property {AbortController | null} stream The live event stream, while signed in.
 * @property {FormContext | null} form
 * @property {(message: string) => void} onUnauthorized Signs out, saying why.
 */
export {};
