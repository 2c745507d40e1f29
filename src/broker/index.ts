export type { ApiRequestInit } from "./api-call.js";
export type { RefreshHookInput } from "./refresh-hook.js";
export type { SchedulerOptions } from "./scheduler.js";
export * from "./tokenwarden.js";
export type * from "./views.js";
