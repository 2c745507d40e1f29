import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { TokenwardenError } from "../core/errors.js";
import { idSchema } from "../core/integration.js";
import { defineRoute } from "./route.js";

/**
 * The preset catalogue. It holds no secret (no client credentials, only public
 * endpoints and notes), so any valid key may read it: a client key's owner choosing a
 * provider needs it as much as an admin.
 */
export function registerPresetRoutes(app: FastifyInstance, tw: Tokenwarden): void {
  defineRoute(app, {
    method: "GET",
    url: "/v1/presets",
    summary: "List the provider presets an integration can start from (`preset`)",
    tags: ["presets"],
    access: "client",
    handler: async () => ({ presets: tw.listPresets() }),
  });
  defineRoute(app, {
    method: "GET",
    url: "/v1/presets/:name",
    summary: "Show one provider preset",
    tags: ["presets"],
    access: "client",
    params: z.strictObject({ name: idSchema }),
    handler: async ({ params }) => {
      const preset = tw.listPresets().find((p) => p.name === params.name);
      if (preset === undefined)
        throw new TokenwardenError("not_found", `preset ${params.name} does not exist`);
      return preset;
    },
  });
}
