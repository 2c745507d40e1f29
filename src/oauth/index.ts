export * from "./authorization.js";
export * from "./client-auth.js";
export * from "./http.js";
export * from "./revocation.js";
export * from "./token-endpoint.js";
export * from "./token-response.js";
