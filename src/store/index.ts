export * from "./crypto.js";
export * from "./open.js";
export type * from "./store.js";
