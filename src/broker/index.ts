export type { ApiRequest, ApiResponse } from "../oauth/api-call.js";
export { forwardableRequestHeaders, forwardableResponseHeaders } from "../oauth/api-call.js";
export type { RefreshHookInput } from "../oauth/refresh-hook.js";
export type { SchedulerOptions } from "./scheduler.js";
export * from "./tokenwarden.js";
export type * from "./views.js";
