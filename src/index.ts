/**
 * Tokenwarden's public library surface. The pure core (model, validation,
 * templating, refresh policy) and the OAuth 2.0 protocol client are exported for
 * programs that want the pieces; the broker (`Tokenwarden`) builds on them.
 */

export * from "./broker/index.js";
export * from "./core/index.js";
export * from "./oauth/index.js";
export * from "./presets/catalogue.js";
export * from "./store/index.js";
