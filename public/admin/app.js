// Tokenwarden admin page. Plain modules, no framework: everything it shows comes from
// the /v1 API, with the API key kept in sessionStorage (this tab only, never a URL).

const KEY_STORAGE = "tokenwarden.apiKey";
const SECRET_FIELDS = new Set(["clientSecret", "password", "refreshToken"]);
const INTEGRATION_MAIN = [
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
];
const CONNECTION_MAIN = [
  "id",
  "integration",
  "environment",
  "parameters",
  "username",
  "password",
  "refreshToken",
];

const state = {
  key: sessionStorage.getItem(KEY_STORAGE),
  schemas: null,
  redirectUri: document.querySelector('meta[name="tw-redirect-uri"]')?.content ?? "",
  integrations: [],
  connections: [],
  detailId: null,
  events: [],
  stream: null,
};

const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function announce(text) {
  $("#announce").textContent = text;
}

// API -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code;
    this.field = error?.field;
    this.issues = error?.issues ?? [];
  }
}

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${state.key}`, accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401) signOut("Your API key was refused: sign in again.");
    throw new ApiError(res.status, data?.error);
  }
  return data;
}

// Sign in ---------------------------------------------------------------------------

async function signIn(key) {
  state.key = key;
  try {
    const schemas = await api("GET", "/v1/schemas");
    state.schemas = schemas;
    if (schemas.redirectUri) state.redirectUri = schemas.redirectUri;
  } catch (error) {
    state.key = null;
    throw error;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  $("#nav").hidden = false;
  await loadAll();
  startEventStream();
  route();
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = null;
  state.stream?.abort();
  $("#nav").hidden = true;
  show("sign-in");
  if (message) $("#api-key-error").textContent = message;
}

$("#sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("#api-key");
  const error = $("#api-key-error");
  error.textContent = "";
  input.removeAttribute("aria-invalid");
  if (input.value.trim() === "") {
    error.textContent = "Enter an API key.";
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  try {
    await signIn(input.value.trim());
    input.value = "";
  } catch (e) {
    error.textContent = e.status === 401 ? "This API key is not valid." : e.message;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
});
$("#sign-out").addEventListener("click", () => signOut());

// Views -----------------------------------------------------------------------------

function show(id) {
  for (const section of ["sign-in", "connections", "integrations", "detail"]) {
    $(`#${section}`).hidden = section !== id;
  }
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.dataset.view === id || (id === "detail" && tab.dataset.view === "connections")) {
      tab.setAttribute("aria-current", "page");
    } else tab.removeAttribute("aria-current");
  }
}

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    location.hash = tab.dataset.view;
  });
}
$("#back").addEventListener("click", () => {
  location.hash = "connections";
});
window.addEventListener("hashchange", () => route());

function route() {
  if (!state.key) return show("sign-in");
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash.startsWith("connection/")) return openDetail(hash.slice("connection/".length));
  state.detailId = null;
  if (hash === "integrations") {
    renderIntegrations();
    return show("integrations");
  }
  renderConnections();
  show("connections");
}

async function loadAll() {
  const [integrations, connections] = await Promise.all([
    api("GET", "/v1/integrations"),
    api("GET", "/v1/connections"),
  ]);
  state.integrations = integrations.integrations;
  state.connections = connections.connections;
  renderFilters();
}

function integrationOf(key) {
  return state.integrations.find((i) => i.key === key);
}

function badge(status) {
  return el("span", { class: `badge ${status}` }, status.replaceAll("_", " "));
}

/** Time to expiry, kept live by the ticker below. */
function expiry(iso) {
  return el("span", { "data-expires": iso ?? "" }, describeExpiry(iso));
}

function describeExpiry(iso) {
  if (!iso) return "—";
  const ms = Date.parse(iso) - Date.now();
  const abs = Math.abs(ms) / 1000;
  const h = Math.floor(abs / 3600);
  const m = Math.floor((abs % 3600) / 60);
  const s = Math.floor(abs % 60);
  const text = h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`;
  return ms >= 0 ? `in ${text}` : `expired ${text} ago`;
}

setInterval(() => {
  for (const node of document.querySelectorAll("[data-expires]")) {
    const iso = node.getAttribute("data-expires");
    node.textContent = describeExpiry(iso);
    node.classList.toggle("expired", iso !== "" && Date.parse(iso) < Date.now());
  }
}, 1000);

// Connections -----------------------------------------------------------------------

function renderFilters() {
  const form = $("#filters");
  const fill = (name, values) => {
    const select = form.elements[name];
    const current = select.value;
    select.replaceChildren(
      el("option", { value: "" }, "All"),
      ...values.map((v) => el("option", { value: v }, v || "(none)")),
    );
    select.value = values.includes(current) ? current : "";
  };
  fill(
    "integration",
    state.integrations.map((i) => i.key),
  );
  fill("environment", [...new Set(state.connections.map((c) => c.environment))].sort());
}
$("#filters").addEventListener("change", () => renderConnections());

function renderConnections() {
  const filters = Object.fromEntries(new FormData($("#filters")));
  const rows = state.connections.filter(
    (c) =>
      (!filters.integration || c.integration === filters.integration) &&
      (!filters.environment || c.environment === filters.environment) &&
      (!filters.status || c.status === filters.status),
  );
  const body = $("#connections-table tbody");
  body.replaceChildren(
    ...(rows.length === 0
      ? [el("tr", {}, el("td", { colspan: 6, class: "empty" }, "No connections match."))]
      : rows.map((c) =>
          el(
            "tr",
            { "data-id": c.id },
            el("td", {}, el("a", { href: `#connection/${encodeURIComponent(c.id)}` }, c.id)),
            el("td", {}, c.integration),
            el("td", {}, c.environment || "—"),
            el("td", {}, badge(c.status)),
            el("td", {}, expiry(c.expiresAt)),
            el("td", {}, c.lastError?.message ?? "—"),
          ),
        )),
  );
}

async function reloadConnection(id) {
  try {
    const fresh = await api("GET", `/v1/connections/${encodeURIComponent(id)}`);
    const index = state.connections.findIndex((c) => c.id === id);
    if (index === -1) state.connections.push(fresh);
    else state.connections[index] = fresh;
  } catch (error) {
    if (error.status !== 404) throw error;
    state.connections = state.connections.filter((c) => c.id !== id);
  }
  renderFilters();
  renderConnections();
  if (state.detailId === id) renderDetail();
}

$("#new-connection").addEventListener("click", () => openForm("connection"));

// Connection detail -----------------------------------------------------------------

async function openDetail(id) {
  state.detailId = id;
  show("detail");
  $("#detail-message").textContent = "";
  await reloadConnection(id);
  const page = await api("GET", `/v1/connections/${encodeURIComponent(id)}/events?limit=50`);
  state.events = page.events;
  renderEvents();
  $("#detail-title").focus?.();
}

function renderDetail() {
  const c = state.connections.find((x) => x.id === state.detailId);
  if (!c) {
    $("#detail-title").textContent = "Connection not found";
    $("#facts").replaceChildren();
    return;
  }
  const integration = integrationOf(c.integration);
  $("#detail-title").textContent = c.id;
  const fact = (name, value) => [el("dt", {}, name), el("dd", {}, value)];
  $("#facts").replaceChildren(
    ...fact("Status", badge(c.status)),
    ...fact(
      "Integration",
      `${integration?.displayName ?? c.integration} (${integration?.grantType ?? "?"})`,
    ),
    ...fact("Environment", c.environment || "—"),
    ...fact("Expires", expiry(c.expiresAt)),
    ...fact("Scope", c.scope ?? "—"),
    ...fact("Last refresh", c.lastRefreshAt ? new Date(c.lastRefreshAt).toLocaleString() : "—"),
    ...fact("Next refresh", c.nextRefreshAt ? new Date(c.nextRefreshAt).toLocaleString() : "—"),
    ...fact("Last error", c.lastError ? `${c.lastError.code}: ${c.lastError.message}` : "—"),
  );
  $("#redirect-uri").value = state.redirectUri;
  const usesCode = integration?.grantType === "authorization_code";
  $("#authorize").hidden = !usesCode;
  $(".redirect").hidden = !usesCode;
}

function renderEvents() {
  const body = $("#events-table tbody");
  body.replaceChildren(
    ...(state.events.length === 0
      ? [el("tr", {}, el("td", { colspan: 7, class: "empty" }, "No events yet."))]
      : state.events.map((e) =>
          el(
            "tr",
            {},
            el("td", {}, new Date(e.at).toLocaleString()),
            el("td", {}, e.trigger),
            el("td", {}, e.action),
            el("td", {}, badge(e.outcome)),
            el("td", {}, e.httpStatus ?? "—"),
            el(
              "td",
              {},
              e.errorCode
                ? `${e.errorCode}${e.errorDescription ? `: ${e.errorDescription}` : ""}`
                : "—",
            ),
            el("td", {}, `${e.durationMs} ms`),
          ),
        )),
  );
}

function detailMessage(text, tone) {
  const node = $("#detail-message");
  node.textContent = text;
  node.className = `message ${tone ?? ""}`;
}

$("#copy-redirect").addEventListener("click", async () => {
  const input = $("#redirect-uri");
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand("copy");
  }
  announce("Redirect URL copied.");
  $("#copy-redirect").textContent = "Copied";
  setTimeout(() => {
    $("#copy-redirect").textContent = "Copy";
  }, 1500);
});

$("#authorize").addEventListener("click", async () => {
  const id = state.detailId;
  // Opened at once, while the click still counts as a user gesture; pointed at the
  // authorization server when the service has made the state and PKCE verifier.
  const popup = window.open("about:blank", "tokenwarden-authorize", "popup,width=560,height=720");
  try {
    const started = await api("GET", `/v1/connections/${encodeURIComponent(id)}/authorize`);
    if (popup) {
      popup.location.href = started.url;
      detailMessage("Log in and consent in the popup window…");
    } else {
      detailMessage(
        "The popup was blocked: allow popups for this page, or open the link below.",
        "bad",
      );
      $("#detail-message").append(
        " ",
        el("a", { href: started.url, target: "_blank", rel: "opener" }, "Authorize"),
      );
    }
  } catch (error) {
    popup?.close();
    detailMessage(error.message, "bad");
  }
});

window.addEventListener("message", (event) => {
  if (event.origin !== location.origin || event.data?.source !== "tokenwarden") return;
  const { type, connectionId, error, title } = event.data;
  if (type === "authorized") {
    detailMessage("OAuth2 token received with success!", "good");
    announce(`${connectionId} is authorized.`);
    reloadConnection(connectionId);
  } else {
    detailMessage(
      `${title ?? "The authorization did not complete"} (${error ?? "unknown error"}).`,
      "bad",
    );
  }
});

$("#refresh-now").addEventListener("click", async () => {
  const button = $("#refresh-now");
  button.disabled = true;
  detailMessage("Refreshing…");
  try {
    await api("POST", `/v1/connections/${encodeURIComponent(state.detailId)}/refresh`);
    detailMessage("Refreshed.", "good");
  } catch (error) {
    detailMessage(`Refresh failed: ${error.message}`, "bad");
  } finally {
    button.disabled = false;
    await reloadConnection(state.detailId);
  }
});

async function confirmAction(text) {
  const dialog = $("#confirm-dialog");
  $("#confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
  });
}

$("#revoke").addEventListener("click", async () => {
  const id = state.detailId;
  const sure = await confirmAction(
    `Revoke the tokens of ${id} at the authorization server and forget them? Calls using ${id} will fail until it is authorized again.`,
  );
  if (!sure) return;
  try {
    await api("POST", `/v1/connections/${encodeURIComponent(id)}/revoke`);
    detailMessage("Revoked.", "good");
  } catch (error) {
    detailMessage(`Revoke failed: ${error.message}`, "bad");
  }
  await reloadConnection(id);
});

$("#delete-connection").addEventListener("click", async () => {
  const id = state.detailId;
  if (!(await confirmAction(`Delete ${id}? Its tokens are forgotten (not revoked).`))) return;
  try {
    await api("DELETE", `/v1/connections/${encodeURIComponent(id)}`);
    state.connections = state.connections.filter((c) => c.id !== id);
    announce(`${id} deleted.`);
    location.hash = "connections";
  } catch (error) {
    detailMessage(error.message, "bad");
  }
});

$("#edit-connection").addEventListener("click", () => {
  openForm(
    "connection",
    state.connections.find((c) => c.id === state.detailId),
  );
});

// Live events -----------------------------------------------------------------------

/** Reads the service's event stream with fetch (EventSource cannot send the API key). */
async function startEventStream() {
  state.stream?.abort();
  const controller = new AbortController();
  state.stream = controller;
  let delay = 1000;
  while (!controller.signal.aborted && state.key) {
    try {
      const res = await fetch("/v1/events/stream", {
        headers: { authorization: `Bearer ${state.key}` },
        signal: controller.signal,
      });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      delay = 1000;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end = buffer.indexOf("\n\n");
        while (end !== -1) {
          onStreamMessage(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf("\n\n");
        }
      }
    } catch {
      if (controller.signal.aborted) return;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 30_000);
  }
}

function onStreamMessage(block) {
  const data = block
    .split("\n")
    .filter((line) => line.startsWith("data: "))
    .map((line) => line.slice(6))
    .join("\n");
  if (data === "") return;
  const event = JSON.parse(data);
  if (event.connectionId === state.detailId) {
    state.events = [event, ...state.events.filter((e) => e.id !== event.id)].slice(0, 200);
    renderEvents();
  }
  reloadConnection(event.connectionId);
}

// Integrations ----------------------------------------------------------------------

function renderIntegrations() {
  const body = $("#integrations-table tbody");
  body.replaceChildren(
    ...(state.integrations.length === 0
      ? [el("tr", {}, el("td", { colspan: 6, class: "empty" }, "No integrations yet."))]
      : state.integrations.map((i) =>
          el(
            "tr",
            { "data-key": i.key },
            el("td", {}, i.key),
            el("td", {}, i.displayName ?? i.key),
            el("td", {}, i.grantType),
            el("td", {}, i.tokenUrl),
            el("td", {}, i.clientSecret.set ? "set" : "not set"),
            el(
              "td",
              {},
              el(
                "button",
                {
                  type: "button",
                  onclick: () => openForm("integration", i),
                  "aria-label": `Edit ${i.key}`,
                },
                "Edit",
              ),
            ),
          ),
        )),
  );
}

$("#new-integration").addEventListener("click", () => openForm("integration"));

// Forms, built from the API's JSON Schemas --------------------------------------------

let formContext = null;

function labelFor(name) {
  return name
    .replace(/([A-Z])/g, " $1")
    .replace(/^./, (c) => c.toUpperCase())
    .replace("Url", "URL")
    .replace("Id", "ID")
    .replace(/^Api /, "API ");
}

/** One input for one schema property; `existing` is the current view (secrets as { set }). */
function fieldFor(name, schema, required, existing, editing) {
  const id = `f-${name}`;
  const help = [];
  let input;
  const value = existing?.[name];
  if (SECRET_FIELDS.has(name)) {
    input = el("input", { id, name, type: "password", autocomplete: "new-password" });
    if (value?.set) {
      input.placeholder = "set (leave empty to keep)";
      help.push("Write-only: type a new value to replace it.");
    }
  } else if (Array.isArray(schema.enum)) {
    input = el(
      "select",
      { id, name },
      ...(required ? [] : [el("option", { value: "" }, "(default)")]),
      ...schema.enum.map((v) => el("option", { value: v }, v)),
    );
    if (value !== undefined) input.value = value;
    else if (schema.default !== undefined) input.value = schema.default;
  } else if (schema.type === "boolean") {
    input = el("input", { id, name, type: "checkbox" });
    input.checked = value ?? schema.default ?? false;
  } else if (schema.type === "integer" || schema.type === "number") {
    input = el("input", { id, name, type: "number", step: schema.type === "integer" ? 1 : "any" });
    if (value !== undefined) input.value = value;
    else if (schema.default !== undefined) input.placeholder = String(schema.default);
  } else if (schema.type === "array" && ["string", "integer"].includes(schema.items?.type)) {
    input = el("input", { id, name, type: "text", "data-list": schema.items.type });
    if (Array.isArray(value)) input.value = value.join(" ");
    help.push("Separated by spaces or commas.");
  } else if (schema.type === "object" || schema.type === "array" || schema.anyOf) {
    input = el("textarea", { id, name, "data-json": "true", spellcheck: "false" });
    if (value !== undefined && !(typeof value === "object" && Object.keys(value).length === 0)) {
      input.value = JSON.stringify(value, null, 2);
    }
    help.push("JSON.");
  } else {
    input = el("input", { id, name, type: "text" });
    if (typeof value === "string") input.value = value;
  }
  if (editing && (name === "key" || name === "id")) input.readOnly = true;
  const errorId = `${id}-error`;
  const helpId = `${id}-help`;
  input.setAttribute("aria-describedby", `${help.length ? helpId : ""} ${errorId}`.trim());
  if (required) input.setAttribute("aria-required", "true");
  const label =
    schema.type === "boolean"
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
    schema.type === "boolean" ? null : input,
    help.length ? el("p", { class: "help", id: helpId }, help.join(" ")) : null,
    el("p", { class: "error", id: errorId }),
  );
}

function openForm(kind, existing) {
  const schema = state.schemas[kind];
  const editing = existing !== undefined;
  const main = kind === "integration" ? INTEGRATION_MAIN : CONNECTION_MAIN;
  const required = new Set(schema.required ?? []);
  const fields = $("#form-fields");
  fields.replaceChildren();
  $("#form-error").textContent = "";
  $("#form-title").textContent =
    `${editing ? "Edit" : "New"} ${kind}${editing ? ` ${existing.key ?? existing.id}` : ""}`;
  formContext = { kind, existing, schema };

  const advanced = el("details", { class: "advanced" }, el("summary", {}, "Advanced settings"));
  for (const name of [
    ...main,
    ...Object.keys(schema.properties).filter((n) => !main.includes(n)),
  ]) {
    const property = schema.properties[name];
    if (!property) continue;
    if (kind === "connection" && name === "integration") {
      const select = el(
        "select",
        {
          id: "f-integration",
          name: "integration",
          "aria-required": "true",
          "aria-describedby": "f-integration-error",
        },
        ...state.integrations.map((i) => el("option", { value: i.key }, i.displayName ?? i.key)),
      );
      if (existing) select.value = existing.integration;
      select.addEventListener("change", () => adaptConnectionForm());
      fields.append(
        el(
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
        ),
      );
      continue;
    }
    if (kind === "connection" && name === "parameters") {
      fields.append(el("div", { id: "parameter-fields" }));
      continue;
    }
    const field = fieldFor(name, property, required.has(name), existing, editing);
    (main.includes(name) ? fields : advanced).append(field);
  }
  if (advanced.children.length > 1) fields.append(advanced);
  if (kind === "connection") adaptConnectionForm();
  $("#form-dialog").showModal();
  fields.querySelector("input:not([readonly]), select")?.focus();
}

/** A connection's form follows its integration: its {parameters}, and the grant's fields. */
function adaptConnectionForm() {
  const key = $("#f-integration")?.value;
  const integration = integrationOf(key);
  const existing = formContext.existing;
  const holder = $("#parameter-fields");
  holder.replaceChildren(
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
  const grant = integration?.grantType;
  for (const [name, shown] of [
    ["username", grant === "password"],
    ["password", grant === "password"],
    ["refreshToken", grant === "refresh_token"],
  ]) {
    const field = document.querySelector(`[data-field="${name}"]`);
    if (field) field.hidden = !shown;
  }
}

function readForm() {
  const { kind, schema } = formContext;
  const body = {};
  for (const field of document.querySelectorAll("#form-fields .field")) {
    if (field.hidden) continue;
    const name = field.dataset.field;
    const input = field.querySelector("input, select, textarea");
    if (!input) continue;
    if (name.startsWith("parameters.")) {
      body.parameters ??= {};
      body.parameters[name.slice("parameters.".length)] = input.value;
      continue;
    }
    const property = schema.properties[name] ?? {};
    if (input.type === "checkbox") {
      if (input.checked !== (property.default ?? false)) body[name] = input.checked;
      continue;
    }
    const raw = input.value.trim();
    if (raw === "") continue; // left out: the default applies, or a secret is kept
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
    } else if (input.type === "number") body[name] = Number(raw);
    else body[name] = raw;
  }
  if (kind === "connection" && !body.parameters) body.parameters = {};
  return body;
}

function showFieldErrors(error) {
  for (const field of document.querySelectorAll("#form-fields .field")) {
    field.classList.remove("invalid");
    field.querySelector(".error").textContent = "";
    field.querySelector("input, select, textarea")?.removeAttribute("aria-invalid");
  }
  const issues =
    error.issues.length > 0
      ? error.issues
      : error.field
        ? [{ field: error.field, message: error.message }]
        : [];
  let first = null;
  let unplaced = [];
  for (const issue of issues) {
    const parts = issue.field.split(".");
    const field =
      document.querySelector(`#form-fields [data-field="${CSS.escape(issue.field)}"]`) ??
      document.querySelector(`#form-fields [data-field="${CSS.escape(parts[0])}"]`);
    if (!field || field.hidden) {
      unplaced.push(`${issue.field}: ${issue.message}`);
      continue;
    }
    field.closest("details")?.setAttribute("open", "");
    field.classList.add("invalid");
    const message = field.querySelector(".error");
    message.textContent = message.textContent
      ? `${message.textContent}; ${issue.message}`
      : issue.message;
    const input = field.querySelector("input, select, textarea");
    input?.setAttribute("aria-invalid", "true");
    first ??= input;
  }
  if (issues.length === 0) unplaced = [error.message];
  $("#form-error").textContent =
    unplaced.length > 0 ? unplaced.join(" · ") : "Please fix the fields marked below.";
  first?.focus();
}

$("#entity-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const { kind } = formContext;
  try {
    const body = readForm();
    const id = kind === "integration" ? body.key : body.id;
    if (!id)
      throw new ApiError(400, {
        message: `${kind === "integration" ? "key" : "id"}: is required`,
        issues: [{ field: kind === "integration" ? "key" : "id", message: "is required" }],
      });
    const saved = await api("PUT", `/v1/${kind}s/${encodeURIComponent(id)}`, body);
    $("#form-dialog").close();
    announce(`${kind} ${id} saved.`);
    await loadAll();
    if (kind === "integration") renderIntegrations();
    else {
      renderConnections();
      location.hash = `connection/${encodeURIComponent(saved.id)}`;
      if (state.detailId === saved.id) renderDetail();
    }
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    showFieldErrors(error);
  }
});
$("#form-cancel").addEventListener("click", () => $("#form-dialog").close());

// Start -----------------------------------------------------------------------------

if (state.key) {
  signIn(state.key).catch(() => signOut("Sign in again."));
} else {
  show("sign-in");
  $("#api-key").focus();
}
