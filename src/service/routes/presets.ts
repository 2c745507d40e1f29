/**
 * The preset catalogue (presets/catalogue.json). It holds no secret (no client
 * credentials, only public endpoints and notes), so any valid key may read it: a
 * client key's owner choosing a provider needs it as much as an admin.
 */
import { z } from "zod";
import { TokenwardenError } from "../../core/errors.js";
import { idSchema } from "../../core/integration.js";
import { defineRoute } from "../route.js";
import type { RouteModule } from "./context.js";

export const presetRoutes: RouteModule = (app, { tw }) => {
  defineRoute(app, {
    method: "GET",
    url: "/v1/presets",
    operationId: "listPresets",
    summary: "List the provider presets an integration can start from (`preset`)",
    tags: ["presets"],
    access: "client",
    responses: { 200: { description: "Every preset", schema: "PresetList" } },
    handler: async () => ({ presets: tw.listPresets() }),
  });
  defineRoute(app, {
    method: "GET",
    url: "/v1/presets/:name",
    operationId: "getPreset",
    summary: "Show one provider preset",
    tags: ["presets"],
    access: "client",
    params: z.strictObject({ name: idSchema }),
    responses: {
      200: { description: "The preset", schema: "PresetEntry" },
      404: { description: "No preset of that name", schema: "ErrorBody" },
    },
    handler: async ({ params }) => {
      const preset = tw.listPresets().find((p) => p.name === params.name);
      if (preset === undefined)
        throw new TokenwardenError("not_found", `preset ${params.name} does not exist`);
      return preset;
    },
  });
};
