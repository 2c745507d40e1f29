export type { ApiRequest, ApiResponse } from "./api-call.js";
export { forwardableRequestHeaders, forwardableResponseHeaders } from "./api-call.js";
export type { RefreshHookInput } from "./refresh-hook.js";
export type { SchedulerOptions } from "./scheduler.js";
export * from "./tokenwarden.js";
export type * from "./views.js";
