// @ts-check
/**
 * The integration and connection forms, built from the API's JSON Schemas and shaped
 * by what the server says of them: which fields are secret (write-only) and which only
 * some grants use (hidden for the others).
 */
import { ApiError, api } from "./api.js";
import { $, el } from "./dom.js";
import { presetChooser } from "./presets.js";

/**
 * @typedef {import("./types.js").App} App
 * @typedef {import("./types.js").Kind} Kind
 * @typedef {import("./types.js").JsonSchema} JsonSchema
 * @typedef {import("./types.js").ObjectSchema} ObjectSchema
 * @typedef {import("./types.js").GrantType} GrantType
 */

/** Shown first, in this order; the rest go under "Advanced settings". */
const MAIN_FIELDS = {
  integration: [
    "key",
    "displayName",
    "grantType",
    "authorizationUrl",
    "tokenUrl",
    "revocationUrl",
    "clientId",
    "clientSecret",
    "scopes",
    "apiBaseUrl",
    "parameters",
  ],
  connection: [
    "id",
    "integration",
    "environment",
    "parameters",
    "username",
    "password",
    "refreshToken",
  ],
};

/** "tokenUrl" → "Token URL". */
function labelFor(/** @type {string} */ name) {
  return name
    .replace(/([A-Z])/g, " $1")
    .replace(/^./, (c) => c.toUpperCase())
    .replace("Url", "URL")
    .replace("Id", "ID")
    .replace(/^Api /, "API ");
}

/**
 * One input for one schema property; `existing` is the current view (secrets as { set }).
 * @param {App} app
 * @param {Kind} kind
 * @param {string} name
 * @param {JsonSchema} schema
 * @param {boolean} required
 * @param {Record<string, unknown> | undefined} existing
 */
function fieldFor(app, kind, name, schema, required, existing) {
  const id = `f-${name}`;
  /** @type {string[]} */
  const help = [];
  /** @type {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} */
  let input;
  const value = existing?.[name];
  // What the model says of the field beyond its type (grantType: when it may be left out).
  if (schema.description !== undefined) help.push(schema.description);
  const secret = /** @type {readonly string[]} */ (app.schemas?.secretFields[kind] ?? []);
  if (secret.includes(name)) {
    input = el("input", { id, name, type: "password", autocomplete: "new-password" });
    if (/** @type {{ set?: boolean } | undefined} */ (value)?.set) {
      input.placeholder = "set (leave empty to keep)";
      help.push("Write-only: type a new value to replace it.");
    }
  } else if (Array.isArray(schema.enum)) {
    input = el(
      "select",
      { id, name },
      required
        ? null
        : el("option", { value: "" }, schema.default === undefined ? "(not set)" : "(default)"),
      ...schema.enum.map((v) => el("option", { value: String(v) }, String(v))),
    );
    if (value !== undefined) input.value = String(value);
    else if (schema.default !== undefined) input.value = String(schema.default);
  } else if (schema.type === "boolean") {
    input = el("input", { id, name, type: "checkbox" });
    input.checked = Boolean(value ?? schema.default ?? false);
  } else if (schema.type === "integer" || schema.type === "number") {
    input = el("input", { id, name, type: "number", step: schema.type === "integer" ? 1 : "any" });
    if (value !== undefined) input.value = String(value);
    else if (schema.default !== undefined) input.placeholder = String(schema.default);
  } else if (
    schema.type === "array" &&
    (schema.items?.type === "string" || schema.items?.type === "integer")
  ) {
    input = el("input", { id, name, type: "text", "data-list": schema.items.type });
    if (Array.isArray(value)) input.value = value.join(" ");
    help.push("Separated by spaces or commas.");
  } else if (schema.type === "object" || schema.type === "array" || schema.anyOf) {
    input = el("textarea", { id, name, "data-json": "true", spellcheck: "false" });
    if (
      value !== undefined &&
      !(typeof value === "object" && value !== null && Object.keys(value).length === 0)
    ) {
      input.value = JSON.stringify(value, null, 2);
    }
    help.push("JSON.");
  } else {
    input = el("input", { id, name, type: "text" });
    if (typeof value === "string") input.value = value;
  }
  if (
    existing !== undefined &&
    (name === "key" || name === "id") &&
    input instanceof HTMLInputElement
  ) {
    input.readOnly = true;
  }
  const errorId = `${id}-error`;
  const helpId = `${id}-help`;
  input.setAttribute("aria-describedby", `${help.length ? helpId : ""} ${errorId}`.trim());
  if (required) input.setAttribute("aria-required", "true");
  const checkbox = schema.type === "boolean";
  const label = checkbox
    ? el("label", { class: "check", for: id }, input, labelFor(name))
    : el(
        "label",
        { for: id },
        labelFor(name),
        required ? el("span", { class: "required", "aria-hidden": "true" }, " *") : null,
      );
  return el(
    "div",
    { class: "field", "data-field": name },
    label,
    checkbox ? null : input,
    help.length ? el("p", { class: "help", id: helpId }, help.join(" ")) : null,
    el("p", { class: "error", id: errorId }),
  );
}

/**
 * Opens the form for a new (`existing` undefined) or an existing integration or connection.
 * @param {App} app
 * @param {Kind} kind
 * @param {Record<string, unknown>} [existing]
 * @param {() => void} [onNoIntegration] What "New integration" does when a connection has none to use.
 */
export function openForm(app, kind, existing, onNoIntegration) {
  if (app.schemas === null) return;
  const schema = app.schemas[kind];
  const editing = existing !== undefined;
  const main = MAIN_FIELDS[kind];
  const required = new Set(schema.required ?? []);
  const fields = $("#form-fields");
  const save = /** @type {HTMLButtonElement} */ ($("#form-save"));
  fields.replaceChildren();
  save.disabled = false;
  $("#form-error").textContent = "";
  $("#form-title").textContent = `${editing ? "Edit" : "New"} ${kind}${
    editing ? ` ${String(existing.key ?? existing.id)}` : ""
  }`;
  app.form = { kind, existing, schema };
  const dialog = /** @type {HTMLDialogElement} */ ($("#form-dialog"));

  if (kind === "connection" && app.integrations.length === 0) {
    // Nothing to choose from: say what comes first instead of an empty required field.
    save.disabled = true;
    fields.append(
      el(
        "div",
        { class: "notice" },
        el(
          "p",
          {},
          "Create an integration first: a connection holds the tokens of one integration.",
        ),
        el(
          "button",
          {
            type: "button",
            class: "primary",
            onclick: () => {
              dialog.close();
              onNoIntegration?.();
            },
          },
          "New integration",
        ),
      ),
    );
    dialog.showModal();
    return;
  }

  const advanced = el("details", { class: "advanced" }, el("summary", {}, "Advanced settings"));
  const names = [...main, ...Object.keys(schema.properties).filter((n) => !main.includes(n))];
  for (const name of names) {
    const property = schema.properties[name];
    if (!property) continue;
    if (kind === "connection" && name === "integration") {
      fields.append(integrationChoice(app, existing));
      continue;
    }
    if (kind === "connection" && name === "parameters") {
      fields.append(el("div", { id: "parameter-fields" }));
      continue;
    }
    const field = fieldFor(app, kind, name, property, required.has(name), existing);
    (main.includes(name) ? fields : advanced).append(field);
  }
  if (advanced.children.length > 1) fields.append(advanced);
  if (kind === "connection") {
    $("#f-integration").addEventListener("change", () => adaptConnectionForm(app));
    adaptConnectionForm(app);
  } else {
    $("#f-grantType").addEventListener("change", () => adaptIntegrationForm(app));
    adaptIntegrationForm(app);
    if (!editing) fields.prepend(presetChooser(app, () => adaptIntegrationForm(app)));
  }
  dialog.showModal();
  /** @type {HTMLElement | null} */ (
    fields.querySelector("input:not([readonly]), select")
  )?.focus();
}

/**
 * @param {App} app
 * @param {Record<string, unknown> | undefined} existing
 */
function integrationChoice(app, existing) {
  const select = el(
    "select",
    {
      id: "f-integration",
      name: "integration",
      "aria-required": "true",
      "aria-describedby": "f-integration-error",
    },
    ...app.integrations.map((i) => el("option", { value: i.key }, i.displayName ?? i.key)),
  );
  if (existing) select.value = String(existing.integration);
  return el(
    "div",
    { class: "field", "data-field": "integration" },
    el(
      "label",
      { for: "f-integration" },
      "Integration",
      el("span", { class: "required", "aria-hidden": "true" }, " *"),
    ),
    select,
    el("p", { class: "error", id: "f-integration-error" }),
  );
}

/**
 * Shows the fields `grant` uses, hides those only other grants use.
 * @param {App} app
 * @param {Kind} kind
 * @param {GrantType | undefined} grant
 */
function showGrantFields(app, kind, grant) {
  const byGrant = app.schemas?.grantFields;
  if (!byGrant) return;
  const mine = new Set(grant === undefined ? [] : byGrant[grant][kind]);
  for (const fields of Object.values(byGrant)) {
    for (const name of fields[kind]) {
      const field = document.querySelector(`#form-fields [data-field="${CSS.escape(name)}"]`);
      if (field instanceof HTMLElement) field.hidden = !mine.has(name);
    }
  }
}

/**
 * An integration's form follows its grant type. Left out, it is authorization_code
 * (with an MCP server URL; without one, saving says it is required).
 */
function adaptIntegrationForm(/** @type {App} */ app) {
  const grant = /** @type {HTMLSelectElement} */ ($("#f-grantType")).value || "authorization_code";
  showGrantFields(app, "integration", /** @type {GrantType} */ (grant));
}

/** A connection's form follows its integration: its {parameters}, and its grant's fields. */
function adaptConnectionForm(/** @type {App} */ app) {
  const key = /** @type {HTMLSelectElement} */ ($("#f-integration")).value;
  const integration = app.integrations.find((i) => i.key === key);
  const existing = /** @type {{ parameters?: Record<string, string> } | undefined} */ (
    app.form?.existing
  );
  $("#parameter-fields").replaceChildren(
    ...(integration?.parameters ?? []).map((name) => {
      const id = `f-param-${name}`;
      const input = el("input", {
        id,
        name: `parameters.${name}`,
        type: "text",
        "aria-required": "true",
        "aria-describedby": `${id}-error`,
      });
      input.value = existing?.parameters?.[name] ?? "";
      return el(
        "div",
        { class: "field", "data-field": `parameters.${name}` },
        el(
          "label",
          { for: id },
          `Parameter {${name}}`,
          el("span", { class: "required", "aria-hidden": "true" }, " *"),
        ),
        input,
        el("p", { class: "error", id: `${id}-error` }),
      );
    }),
  );
  showGrantFields(app, "connection", integration?.grantType);
}

/**
 * The request body from the visible fields; an empty field is left out (the default
 * applies, or a secret is kept).
 * @param {App} app
 * @returns {Record<string, unknown>}
 */
function readForm(app) {
  const context = app.form;
  if (context === null) return {};
  /** @type {Record<string, unknown>} */
  const body = {};
  /** @type {Record<string, string>} */
  const parameters = {};
  for (const field of document.querySelectorAll("#form-fields .field")) {
    if (!(field instanceof HTMLElement) || field.hidden) continue;
    const name = field.dataset.field ?? "";
    const input = field.querySelector("input, select, textarea");
    if (
      !(
        input instanceof HTMLInputElement ||
        input instanceof HTMLSelectElement ||
        input instanceof HTMLTextAreaElement
      )
    ) {
      continue;
    }
    if (name.startsWith("parameters.")) {
      parameters[name.slice("parameters.".length)] = input.value;
      continue;
    }
    const property = context.schema.properties[name] ?? {};
    if (input instanceof HTMLInputElement && input.type === "checkbox") {
      if (input.checked !== (property.default ?? false)) body[name] = input.checked;
      continue;
    }
    const raw = input.value.trim();
    if (raw === "") continue;
    if (input.dataset.list) {
      const items = raw.split(/[\s,]+/).filter(Boolean);
      body[name] = input.dataset.list === "integer" ? items.map(Number) : items;
    } else if (input.dataset.json) {
      try {
        body[name] = JSON.parse(raw);
      } catch {
        throw new ApiError(400, {
          code: "invalid_config",
          message: `${name}: is not valid JSON`,
          issues: [{ field: name, message: "is not valid JSON" }],
        });
      }
    } else if (input instanceof HTMLInputElement && input.type === "number")
      body[name] = Number(raw);
    else body[name] = raw;
  }
  if (context.kind === "connection") body.parameters = parameters;
  return body;
}

/** Each error next to its field; what has no field, above the form. */
function showFieldErrors(/** @type {ApiError} */ error) {
  for (const field of document.querySelectorAll("#form-fields .field")) {
    field.classList.remove("invalid");
    const message = field.querySelector(".error");
    if (message) message.textContent = "";
    field.querySelector("input, select, textarea")?.removeAttribute("aria-invalid");
  }
  const issues =
    error.issues.length > 0
      ? error.issues
      : error.field
        ? [{ field: error.field, message: error.message }]
        : [];
  /** @type {HTMLElement | null} */
  let first = null;
  /** @type {string[]} */
  let unplaced = [];
  for (const issue of issues) {
    const top = issue.field.split(".")[0] ?? issue.field;
    const field =
      document.querySelector(`#form-fields [data-field="${CSS.escape(issue.field)}"]`) ??
      document.querySelector(`#form-fields [data-field="${CSS.escape(top)}"]`);
    if (!(field instanceof HTMLElement) || field.hidden) {
      unplaced.push(`${issue.field}: ${issue.message}`);
      continue;
    }
    field.closest("details")?.setAttribute("open", "");
    field.classList.add("invalid");
    const message = $(".error", field);
    message.textContent = message.textContent
      ? `${message.textContent}; ${issue.message}`
      : issue.message;
    const input = field.querySelector("input, select, textarea");
    input?.setAttribute("aria-invalid", "true");
    if (input instanceof HTMLElement) first ??= input;
  }
  if (issues.length === 0) unplaced = [error.message];
  $("#form-error").textContent =
    unplaced.length > 0 ? unplaced.join(" · ") : "Please fix the fields marked below.";
  first?.focus();
}

/**
 * Saves the open form; `onSaved` gets what the API answered.
 * @param {App} app
 * @param {(kind: Kind, saved: { id?: string, key?: string }) => Promise<void>} onSaved
 */
export async function submitForm(app, onSaved) {
  const context = app.form;
  if (context === null) return;
  const { kind } = context;
  const idField = kind === "integration" ? "key" : "id";
  try {
    const body = readForm(app);
    const id = body[idField];
    if (typeof id !== "string" || id === "") {
      throw new ApiError(400, {
        message: `${idField}: is required`,
        issues: [{ field: idField, message: "is required" }],
      });
    }
    /** @type {{ id?: string, key?: string }} */
    const saved = await api(app, "PUT", `/v1/${kind}s/${encodeURIComponent(id)}`, body);
    /** @type {HTMLDialogElement} */ ($("#form-dialog")).close();
    await onSaved(kind, saved);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    showFieldErrors(error);
  }
}
