/**
 * What every route module is given, and the shape of one: a function that adds its
 * routes to the server. Adding a resource is one module and one line in index.ts.
 */
import type { FastifyInstance } from "fastify";
import type { Tokenwarden } from "../../broker/tokenwarden.js";
import type { ServiceMetrics } from "../metrics.js";
import type { TokenBodies } from "../token-bodies.js";

/** Where the service serves its client ID metadata document (public: servers fetch it). */
export const CLIENT_METADATA_PATH = "/oauth/client-metadata.json";

export interface RouteContext {
  tw: Tokenwarden;
  /** Base of the redirect URL, e.g. http://127.0.0.1:4180. */
  publicUrl: string;
  /** `<publicUrl>/oauth/callback`, the redirect URL to register with servers. */
  redirectUri: string;
  /** The folder module refresh hooks must lie in (hook-policy.ts); none: refused. */
  hooksDir: string | undefined;
  metrics: ServiceMetrics;
  /** Token bodies written once, shared with the token read's lane (token-read-lane.ts). */
  tokenBodies: TokenBodies;
}

export type RouteModule = (app: FastifyInstance, context: RouteContext) => void;
