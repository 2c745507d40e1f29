/**
 * The preset catalogue: integration fields for well-known providers, shipped as data
 * (`presets/catalogue.json` in the package). An entry is integration fields without
 * client credentials, plus `name`, `displayName`, `docsUrl`, `notes` (the quirks it
 * handles, in words) and `quirks` (the same, as kinds the tests exercise against a
 * server behaving that way).
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { invalidConfig } from "../core/errors.js";
import { idSchema } from "../core/integration.js";
import { parseOrThrow } from "../core/validation.js";

export const QUIRK_KINDS = [
  /** Scopes joined with something other than a space (`scopeSeparator`). */
  "scope_separator",
  /** Extra authorization parameters needed for a refresh token (`access_type=offline`...). */
  "offline_access",
  /** Token responses without `expires_in` for tokens that do not expire (`session: none`). */
  "no_expires_in",
  /** A form-encoded token response (GitHub). */
  "form_encoded_response",
  /** An OAuth error inside an HTTP 200 (GitHub, Slack). */
  "error_in_200",
  /** One client authentication method the server requires (`clientAuth`). */
  "client_auth",
  /** Each refresh returns a new refresh token and the old one dies. */
  "refresh_token_rotation",
  /** No `expires_in`: the expiry is read by introspection (`introspectionUrl`). */
  "expiry_from_introspection",
] as const;
export type QuirkKind = (typeof QUIRK_KINDS)[number];

/** Fields a preset never carries: the integration's identity and its credentials. */
const FORBIDDEN_FIELDS = ["key", "preset", "clientId", "clientSecret", "clientPrivateKey", "tls"];

const presetSchema = z
  .looseObject({
    name: idSchema,
    displayName: z.string().min(1).max(200),
    docsUrl: z.url({ protocol: /^https$/ }),
    notes: z.array(z.string().min(1)).min(1),
    quirks: z.array(z.enum(QUIRK_KINDS)).default([]),
  })
  .superRefine((entry, ctx) => {
    for (const field of FORBIDDEN_FIELDS) {
      if (field in entry)
        ctx.addIssue({ code: "custom", path: [field], message: "a preset must not set it" });
    }
  });

export interface Preset {
  name: string;
  displayName: string;
  docsUrl: string;
  notes: readonly string[];
  quirks: readonly QuirkKind[];
  /** The integration fields it starts from. */
  fields: Readonly<Record<string, unknown>>;
}

export function parseCatalogue(data: unknown): readonly Preset[] {
  const entries = parseOrThrow(z.array(presetSchema), data);
  const seen = new Set<string>();
  return Object.freeze(
    entries.map(({ name, displayName, docsUrl, notes, quirks, ...fields }) => {
      if (seen.has(name)) throw invalidConfig("name", `preset ${name} is listed twice`);
      seen.add(name);
      return Object.freeze({ name, displayName, docsUrl, notes, quirks, fields });
    }),
  );
}

/** Read once when the module loads: the same path from src/presets and dist/presets. */
export const PRESETS: readonly Preset[] = parseCatalogue(
  JSON.parse(readFileSync(new URL("../../presets/catalogue.json", import.meta.url), "utf8")),
);

export function findPreset(name: string): Preset | undefined {
  return PRESETS.find((p) => p.name === name);
}

/**
 * An integration input started from its preset: the preset's fields first, the
 * input's own over them (objects merged key by key, lists replaced). A field the
 * input sets to `null` is left unset, whatever the preset says.
 */
export function applyPreset(input: unknown): unknown {
  if (!isPlainObject(input) || input.preset === undefined) return input;
  if (typeof input.preset !== "string") return input; // the schema names the problem
  const preset = findPreset(input.preset);
  if (preset === undefined) {
    throw invalidConfig("preset", `${input.preset} is not in the catalogue (tokenwarden presets)`);
  }
  return merge(preset.fields, input);
}

function merge(base: Readonly<Record<string, unknown>>, own: Record<string, unknown>) {
  const out: Record<string, unknown> = { ...base };
  for (const [name, value] of Object.entries(own)) {
    const below = base[name];
    if (value === null) delete out[name];
    else if (isPlainObject(value) && isPlainObject(below)) out[name] = merge(below, value);
    else out[name] = value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** A preset as listed: its integration fields and what it says about itself, flat. */
export type PresetEntry = Record<string, unknown> & {
  name: string;
  displayName: string;
  docsUrl: string;
  notes: readonly string[];
  quirks: readonly QuirkKind[];
};

export function presetEntry(preset: Preset): PresetEntry {
  const { fields, ...about } = preset;
  return { ...structuredClone(fields), ...about };
}
