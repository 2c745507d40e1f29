// @ts-check
/**
 * "Start from a preset" on a new integration's form: the catalogue from
 * `GET /v1/presets` in a select; choosing one fills the form's fields with the
 * preset's (the person then adds the client id and secret, and may change anything:
 * the integration's own fields win on the server too) and shows its notes.
 */
import { api } from "./api.js";
import { el } from "./dom.js";

/** @typedef {import("./types.js").App} App */
/** @typedef {Record<string, unknown> & { name: string, displayName: string, docsUrl: string, notes: string[] }} PresetEntry */

const ABOUT = new Set(["name", "displayName", "docsUrl", "notes", "quirks"]);

/**
 * The control, placed above the form's fields; `onFilled` re-adapts the form.
 * @param {App} app
 * @param {() => void} onFilled
 */
export function presetChooser(app, onFilled) {
  const notes = el("ul", { class: "help", id: "preset-notes" });
  const select = /** @type {HTMLSelectElement} */ (
    el(
      "select",
      { id: "preset-start", "aria-describedby": "preset-notes" },
      el("option", { value: "" }, "(none: fill in every field)"),
    )
  );
  /** @type {PresetEntry[]} */
  let presets = [];
  api(app, "GET", "/v1/presets")
    .then((data) => {
      presets = /** @type {{ presets: PresetEntry[] }} */ (data).presets;
      select.append(...presets.map((p) => el("option", { value: p.name }, p.displayName)));
    })
    .catch(() => {
      select.disabled = true;
    });
  select.addEventListener("change", () => {
    const preset = presets.find((p) => p.name === select.value);
    if (preset === undefined) return;
    fill(preset);
    notes.replaceChildren(
      ...preset.notes.map((n) => el("li", {}, n)),
      el(
        "li",
        {},
        el(
          "a",
          { href: preset.docsUrl, target: "_blank", rel: "noopener" },
          "Provider documentation",
        ),
      ),
    );
    onFilled();
  });
  return el(
    "div",
    { class: "preset-start" },
    el("label", { for: "preset-start" }, "Start from a preset"),
    select,
    notes,
  );
}

/** Puts each of the preset's values in the form's input of that name. */
function fill(/** @type {PresetEntry} */ preset) {
  const values = { ...preset, preset: preset.name };
  for (const [name, value] of Object.entries(values)) {
    if (ABOUT.has(name)) continue;
    const input = document.querySelector(`#form-fields #f-${CSS.escape(name)}`);
    if (input instanceof HTMLInputElement && input.type === "checkbox")
      input.checked = Boolean(value);
    else if (input instanceof HTMLInputElement && input.dataset.list)
      input.value = Array.isArray(value) ? value.join(" ") : String(value);
    else if (input instanceof HTMLTextAreaElement) input.value = JSON.stringify(value, null, 2);
    else if (input instanceof HTMLInputElement || input instanceof HTMLSelectElement)
      input.value = String(value);
  }
  const displayName = document.querySelector("#form-fields #f-displayName");
  if (displayName instanceof HTMLInputElement && displayName.value === "")
    displayName.value = preset.displayName;
}
