// @ts-check
/** Rendering: each function draws one part of the page from the app's state. */

import { $, el } from "./dom.js";
import { renderConnectLink } from "./lifecycle.js";

/**
 * @typedef {import("./types.js").App} App
 * @typedef {import("./types.js").Page} Page
 * @typedef {import("./types.js").Kind} Kind
 * @typedef {import("./types.js").ConnectionView} ConnectionView
 * @typedef {import("./types.js").IntegrationView} IntegrationView
 *
 * @typedef {object} Handlers What the buttons drawn here do.
 * @property {(kind: Kind, existing?: Record<string, unknown>) => void} openForm
 * @property {() => void} clearFilters
 */

const PAGES = /** @type {const} */ ([
  "sign-in",
  "connections",
  "integrations",
  "webhooks",
  "detail",
]);

/** Shows one page; the navigation only while signed in, the tab of the page as current. */
export function show(/** @type {App} */ app, /** @type {Page} */ page) {
  $("#nav").hidden = app.key === null;
  for (const id of PAGES) $(`#${id}`).hidden = id !== page;
  for (const tab of document.querySelectorAll(".tab")) {
    const view = tab.getAttribute("data-view");
    if (view === page || (page === "detail" && view === "connections")) {
      tab.setAttribute("aria-current", "page");
    } else tab.removeAttribute("aria-current");
  }
}

/** @param {string} status */
function badge(status) {
  return el("span", { class: `badge ${status}` }, status.replaceAll("_", " "));
}

/** Time to expiry, kept live by `tickExpiries`. */
function expiry(/** @type {string | null} */ iso) {
  return el("span", { "data-expires": iso ?? "" }, describeExpiry(iso));
}

/** @param {string | null} iso */
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

export function tickExpiries() {
  for (const node of document.querySelectorAll("[data-expires]")) {
    const iso = node.getAttribute("data-expires") ?? "";
    node.textContent = describeExpiry(iso);
    node.classList.toggle("expired", iso !== "" && Date.parse(iso) < Date.now());
  }
}

/**
 * A table cell, labelled with its column for the stacked layout on a phone.
 * @param {string} label
 * @param {...(Node | string | number)} children
 */
function cell(label, ...children) {
  return el("td", { "data-label": label }, ...children);
}

/**
 * The row shown instead of an empty table: what to do next, with the button to do it.
 * @param {number} columns
 * @param {string} text
 * @param {HTMLButtonElement | null} [action]
 */
function emptyRow(columns, text, action = null) {
  return el(
    "tr",
    { class: "empty-row" },
    el("td", { colspan: columns, class: "empty" }, el("p", {}, text), action),
  );
}

/**
 * @param {string} label
 * @param {() => void} onclick
 */
function actionButton(label, onclick) {
  return el("button", { type: "button", class: "primary", onclick: () => onclick() }, label);
}

/** The filters' choices, from the integrations, environments and the server's statuses. */
export function renderFilters(/** @type {App} */ app) {
  const form = /** @type {HTMLFormElement} */ ($("#filters"));
  /**
   * @param {string} name
   * @param {string[]} values
   * @param {(value: string) => string} [label]
   */
  const fill = (name, values, label = (v) => v || "(none)") => {
    const select = /** @type {HTMLSelectElement} */ (form.elements.namedItem(name));
    const current = select.value;
    select.replaceChildren(
      el("option", { value: "" }, "All"),
      ...values.map((v) => el("option", { value: v }, label(v))),
    );
    select.value = values.includes(current) ? current : "";
  };
  fill(
    "integration",
    app.integrations.map((i) => i.key),
  );
  fill("environment", [...new Set(app.connections.map((c) => c.environment))].sort());
  fill("status", app.schemas?.statuses ?? [], (s) => s.replaceAll("_", " "));
}

/** @param {App} app @param {Handlers} handlers */
export function renderConnections(app, handlers) {
  const filters = Object.fromEntries(
    new FormData(/** @type {HTMLFormElement} */ ($("#filters"))).entries(),
  );
  const rows = app.connections.filter(
    (c) =>
      (!filters.integration || c.integration === filters.integration) &&
      (!filters.environment || c.environment === filters.environment) &&
      (!filters.status || c.status === filters.status),
  );
  const empty =
    app.integrations.length === 0
      ? emptyRow(
          6,
          "No connections yet. Create an integration first: a connection holds the tokens of one integration.",
          actionButton("New integration", () => {
            location.hash = "integrations";
            handlers.openForm("integration");
          }),
        )
      : app.connections.length === 0
        ? emptyRow(
            6,
            "No connections yet. Create one for each account or environment that needs tokens.",
            actionButton("New connection", () => handlers.openForm("connection")),
          )
        : emptyRow(
            6,
            "No connections match these filters.",
            actionButton("Clear filters", () => handlers.clearFilters()),
          );
  $("#connections-table tbody").replaceChildren(
    ...(rows.length === 0
      ? [empty]
      : rows.map((c) =>
          el(
            "tr",
            { "data-id": c.id },
            cell("Connection", el("a", { href: `#connection/${encodeURIComponent(c.id)}` }, c.id)),
            cell("Integration", c.integration),
            cell("Environment", c.environment || "—"),
            cell("Status", badge(c.status)),
            cell("Expires", expiry(c.expiresAt)),
            cell("Last error", c.lastError?.message ?? "—"),
          ),
        )),
  );
}

/** @param {App} app @param {Handlers} handlers */
export function renderIntegrations(app, handlers) {
  $("#integrations-table tbody").replaceChildren(
    ...(app.integrations.length === 0
      ? [
          emptyRow(
            6,
            "No integrations yet. An integration holds an authorization server's URLs and your client's credentials; connections use it.",
            actionButton("New integration", () => handlers.openForm("integration")),
          ),
        ]
      : app.integrations.map((i) =>
          el(
            "tr",
            { "data-key": i.key },
            cell("Key", i.key),
            cell("Name", i.displayName ?? i.key),
            cell("Grant", i.grantType),
            cell("Token URL", i.tokenUrl ?? i.discoveryUrl ?? i.mcpServerUrl ?? "from discovery"),
            cell("Client secret", i.clientSecret.set ? "set" : "not set"),
            cell(
              "Actions",
              el(
                "button",
                {
                  type: "button",
                  onclick: () => handlers.openForm("integration", i),
                  "aria-label": `Edit ${i.key}`,
                },
                "Edit",
              ),
            ),
          ),
        )),
  );
}

/**
 * The connection's facts, and its buttons as its status and grant allow (the server's
 * table, `GET /v1/schemas` → `actions`).
 * @param {App} app
 */
export function renderDetail(app) {
  const c = app.connections.find((x) => x.id === app.detailId);
  const buttons = [
    "#authorize",
    "#refresh-now",
    "#edit-connection",
    "#revoke",
    "#delete-connection",
  ];
  if (!c) {
    $("#detail-title").textContent = "Connection not found";
    $("#facts").replaceChildren();
    for (const id of buttons) /** @type {HTMLButtonElement} */ ($(id)).disabled = true;
    return;
  }
  const integration = app.integrations.find((i) => i.key === c.integration);
  $("#detail-title").textContent = c.id;
  /** @param {string} name @param {Node | string} value */
  const fact = (name, value) => [el("dt", {}, name), el("dd", {}, value)];
  /** @param {string | null} iso */
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
  $("#facts").replaceChildren(
    ...fact("Status", badge(c.status)),
    ...fact(
      "Integration",
      `${integration?.displayName ?? c.integration} (${integration?.grantType ?? "?"})`,
    ),
    ...fact("Environment", c.environment || "—"),
    ...fact("Expires", expiry(c.expiresAt)),
    ...fact("Scope", c.scope ?? "—"),
    ...fact("Last refresh", when(c.lastRefreshAt)),
    ...fact("Next refresh", when(c.nextRefreshAt)),
    ...fact("Last error", c.lastError ? `${c.lastError.code}: ${c.lastError.message}` : "—"),
  );
  /** @type {HTMLInputElement} */ ($("#redirect-uri")).value = app.redirectUri;
  const allowed = integration && app.schemas?.actions[c.status]?.[integration.grantType];
  $("#authorize").hidden = !allowed?.authorize;
  $(".redirect").hidden = !allowed?.authorize;
  for (const [id, enabled] of /** @type {const} */ ([
    ["#authorize", allowed?.authorize],
    ["#refresh-now", allowed?.refresh],
    ["#revoke", allowed?.revoke],
    ["#edit-connection", true],
    ["#delete-connection", true],
  ])) {
    const button = /** @type {HTMLButtonElement} */ ($(id));
    button.disabled = !enabled;
    button.title = enabled
      ? ""
      : `Not possible while the connection is ${c.status.replaceAll("_", " ")}`;
  }
  renderConnectLink(app);
}

/** @param {App} app */
export function renderEvents(app) {
  $("#events-table tbody").replaceChildren(
    ...(app.events.length === 0
      ? [
          emptyRow(
            7,
            "No events yet: each attempt to obtain, refresh or revoke a token appears here.",
          ),
        ]
      : app.events.map((e) =>
          el(
            "tr",
            { "data-event": e.id },
            cell("Time", new Date(e.at).toLocaleString()),
            cell("Trigger", e.trigger),
            cell("Action", e.action),
            cell("Outcome", badge(e.outcome)),
            cell("HTTP", e.httpStatus ?? "—"),
            cell(
              "Error",
              e.errorCode
                ? `${e.errorCode}${e.errorDescription ? `: ${e.errorDescription}` : ""}`
                : "—",
            ),
            cell("Duration", `${e.durationMs} ms`),
          ),
        )),
  );
}
