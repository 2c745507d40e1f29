// @ts-check
/**
 * The admin page: sign in, routing by the URL's hash, the buttons' actions and the live
 * event stream. Everything it shows comes from the `/v1` API; everything it holds is in
 * the one `App` object made here and passed to each function.
 */
import { ApiError, api, connectionPath } from "./api.js";
import { $, announce, confirmAction, detailMessage, el } from "./dom.js";
import { openForm, submitForm } from "./forms.js";
import { renderWebhooks, wireLifecycle } from "./lifecycle.js";
import { followEvents } from "./stream.js";
import {
  renderConnections,
  renderDetail,
  renderEvents,
  renderFilters,
  renderIntegrations,
  show,
  tickExpiries,
} from "./views.js";

/**
 * @typedef {import("./types.js").App} App
 * @typedef {import("./types.js").Kind} Kind
 * @typedef {import("./types.js").Schemas} Schemas
 * @typedef {import("./types.js").TokenEvent} TokenEvent
 * @typedef {import("./types.js").ConnectionView} ConnectionView
 * @typedef {import("./types.js").IntegrationView} IntegrationView
 * @typedef {import("./views.js").Handlers} Handlers
 */

const KEY_STORAGE = "tokenwarden.apiKey";

/** @returns {App} */
function createApp() {
  return {
    key: sessionStorage.getItem(KEY_STORAGE),
    schemas: null,
    redirectUri: $('meta[name="tw-redirect-uri"]').getAttribute("content") ?? "",
    integrations: [],
    connections: [],
    detailId: null,
    events: [],
    stream: null,
    form: null,
    onUnauthorized: () => undefined,
  };
}

/** @param {App} app @returns {Handlers} */
function handlersFor(app) {
  return {
    openForm: (kind, existing) =>
      openForm(app, kind, existing, () => {
        location.hash = "integrations";
        openForm(app, "integration");
      }),
    clearFilters: () => {
      /** @type {HTMLFormElement} */ ($("#filters")).reset();
      renderConnections(app, handlersFor(app));
    },
  };
}

// Sign in and out ---------------------------------------------------------------------

/** @param {App} app @param {string} key */
async function signIn(app, key) {
  app.key = key;
  try {
    /** @type {Schemas} */
    const schemas = await api(app, "GET", "/v1/schemas");
    app.schemas = schemas;
    if (schemas.redirectUri) app.redirectUri = schemas.redirectUri;
  } catch (error) {
    app.key = null;
    throw error;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  await loadAll(app);
  startStream(app);
  await route(app);
}

/** @param {App} app @param {string} [message] */
function signOut(app, message) {
  sessionStorage.removeItem(KEY_STORAGE);
  app.key = null;
  app.stream?.abort();
  app.stream = null;
  announce("");
  show(app, "sign-in");
  if (message) $("#api-key-error").textContent = message;
}

// Routing -------------------------------------------------------------------------------

/** Shows the page the hash names; a page change clears the last page's status line. */
async function route(/** @type {App} */ app) {
  if (app.key === null) return show(app, "sign-in");
  announce("");
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash.startsWith("connection/")) return openDetail(app, hash.slice("connection/".length));
  app.detailId = null;
  if (hash === "webhooks") {
    show(app, "webhooks");
    return renderWebhooks(app).catch((error) =>
      announce(`Webhooks: ${error instanceof Error ? error.message : error}`),
    );
  }
  if (hash === "integrations") {
    renderIntegrations(app, handlersFor(app));
    return show(app, "integrations");
  }
  renderConnections(app, handlersFor(app));
  show(app, "connections");
}

async function loadAll(/** @type {App} */ app) {
  const [integrations, connections] = await Promise.all([
    /** @type {typeof api<{ integrations: IntegrationView[] }>} */ (api)(
      app,
      "GET",
      "/v1/integrations",
    ),
    /** @type {typeof api<{ connections: ConnectionView[] }>} */ (api)(
      app,
      "GET",
      "/v1/connections",
    ),
  ]);
  app.integrations = integrations.integrations;
  app.connections = connections.connections;
  renderFilters(app);
}

/** Reads one connection again and redraws where it shows. */
async function reloadConnection(/** @type {App} */ app, /** @type {string} */ id) {
  try {
    /** @type {ConnectionView} */
    const fresh = await api(app, "GET", connectionPath(id));
    const index = app.connections.findIndex((c) => c.id === id);
    if (index === -1) app.connections.push(fresh);
    else app.connections[index] = fresh;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
    app.connections = app.connections.filter((c) => c.id !== id);
  }
  renderFilters(app);
  renderConnections(app, handlersFor(app));
  if (app.detailId === id) renderDetail(app);
}

/** @param {App} app @param {string} id */
async function openDetail(app, id) {
  app.detailId = id;
  app.events = [];
  show(app, "detail");
  detailMessage("");
  await reloadConnection(app, id);
  if (!app.connections.some((c) => c.id === id)) return renderEvents(app);
  /** @type {{ events: TokenEvent[] }} */
  const page = await api(app, "GET", connectionPath(id, "/events?limit=50"));
  // Events that arrived on the stream meanwhile are kept.
  app.events = merge(app.events, page.events);
  renderEvents(app);
  $("#detail-title").focus();
}

/** Newest first, each event once, at most 200. */
function merge(/** @type {TokenEvent[]} */ a, /** @type {TokenEvent[]} */ b) {
  const byId = new Map([...a, ...b].map((e) => [e.id, e]));
  return [...byId.values()].sort((x, y) => y.id - x.id).slice(0, 200);
}

// The live stream -----------------------------------------------------------------------

function startStream(/** @type {App} */ app) {
  app.stream?.abort();
  const controller = new AbortController();
  app.stream = controller;
  void followEvents({
    key: /** @type {string} */ (app.key),
    signal: controller.signal,
    onUnauthorized: () => signOut(app, "Your API key was refused: sign in again."),
    onEvent: (event) => {
      if (event.connectionId === app.detailId) {
        app.events = merge([event], app.events);
        renderEvents(app);
      }
      void reloadConnection(app, event.connectionId).catch(() => undefined);
    },
  });
}

// Wiring --------------------------------------------------------------------------------

/** @param {App} app */
function wire(app) {
  app.onUnauthorized = (message) => signOut(app, message);
  wireLifecycle(app);
  const handlers = handlersFor(app);
  const connectionId = () => /** @type {string} */ (app.detailId);

  $("#sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = /** @type {HTMLInputElement} */ ($("#api-key"));
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
      await signIn(app, input.value.trim());
      input.value = "";
    } catch (e) {
      error.textContent =
        e instanceof ApiError && e.status === 401 ? "This API key is not valid." : String(e);
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  });
  $("#sign-out").addEventListener("click", () => signOut(app));

  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => {
      location.hash = tab.getAttribute("data-view") ?? "";
    });
  }
  $("#back").addEventListener("click", () => {
    location.hash = "connections";
  });
  window.addEventListener("hashchange", () => void route(app));
  $("#filters").addEventListener("change", () => renderConnections(app, handlers));
  $("#new-connection").addEventListener("click", () => handlers.openForm("connection"));
  $("#new-integration").addEventListener("click", () => handlers.openForm("integration"));
  $("#edit-connection").addEventListener("click", () => {
    const connection = app.connections.find((c) => c.id === app.detailId);
    if (connection) handlers.openForm("connection", connection);
  });

  $("#copy-redirect").addEventListener("click", async () => {
    const input = /** @type {HTMLInputElement} */ ($("#redirect-uri"));
    try {
      await navigator.clipboard.writeText(input.value);
      announce("Redirect URL copied.");
    } catch {
      input.select();
      announce("Copy the selected redirect URL.");
    }
  });

  $("#authorize").addEventListener("click", async () => {
    const id = connectionId();
    // Opened at once, while the click still counts as a user gesture; pointed at the
    // authorization server when the service has made the state and PKCE verifier.
    const popup = window.open("about:blank", "tokenwarden-authorize", "popup,width=560,height=720");
    try {
      /** @type {{ url: string }} */
      const started = await api(app, "GET", connectionPath(id, "/authorize"));
      if (popup) {
        popup.location.href = started.url;
        detailMessage("Log in and consent in the popup window…");
      } else {
        detailMessage(
          "The popup was blocked: allow popups for this page, or open the link: ",
          "bad",
        );
        $("#detail-message").append(
          el("a", { href: started.url, target: "_blank", rel: "opener" }, "Authorize"),
        );
      }
    } catch (error) {
      popup?.close();
      detailMessage(String(error instanceof Error ? error.message : error), "bad");
    }
  });

  window.addEventListener("message", (event) => {
    if (event.origin !== location.origin || event.data?.source !== "tokenwarden") return;
    const { type, connectionId: id, error, title } = event.data;
    if (type === "authorized") {
      detailMessage("OAuth2 token received with success!", "good");
      announce(`${id} is authorized.`);
      void reloadConnection(app, id);
    } else {
      detailMessage(
        `${title ?? "The authorization did not complete"} (${error ?? "unknown error"}).`,
        "bad",
      );
    }
  });

  $("#refresh-now").addEventListener("click", async () => {
    const id = connectionId();
    const button = /** @type {HTMLButtonElement} */ ($("#refresh-now"));
    button.disabled = true;
    detailMessage("Refreshing…");
    try {
      await api(app, "POST", connectionPath(id, "/refresh"));
      detailMessage("Refreshed.", "good");
    } catch (error) {
      detailMessage(`Refresh failed: ${error instanceof Error ? error.message : error}`, "bad");
    }
    await reloadConnection(app, id); // Redraws the buttons as the new status allows.
  });

  $("#revoke").addEventListener("click", async () => {
    const id = connectionId();
    const sure = await confirmAction(
      `Revoke the tokens of ${id} at the authorization server and forget them? Calls using ${id} will fail until it is authorized again.`,
    );
    if (!sure) return;
    try {
      await api(app, "POST", connectionPath(id, "/revoke"));
      // "… is authorized." no longer holds.
      announce(`${id} is revoked.`);
      detailMessage("Revoked.", "good");
    } catch (error) {
      detailMessage(`Revoke failed: ${error instanceof Error ? error.message : error}`, "bad");
    }
    await reloadConnection(app, id);
  });

  $("#delete-connection").addEventListener("click", async () => {
    const id = connectionId();
    if (!(await confirmAction(`Delete ${id}? Its tokens are forgotten (not revoked).`))) return;
    try {
      await api(app, "DELETE", connectionPath(id));
      app.connections = app.connections.filter((c) => c.id !== id);
      location.hash = "connections";
      announce(`${id} deleted.`);
    } catch (error) {
      detailMessage(error instanceof Error ? error.message : String(error), "bad");
    }
  });

  $("#entity-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void submitForm(app, async (kind, saved) => {
      const id = kind === "integration" ? saved.key : saved.id;
      await loadAll(app);
      if (kind === "integration") {
        renderIntegrations(app, handlers);
        renderConnections(app, handlers);
      } else {
        // pushState, not a hash change: the route would clear the message below.
        history.pushState(null, "", `#connection/${encodeURIComponent(id ?? "")}`);
        await openDetail(app, id ?? "");
      }
      announce(`${kind === "integration" ? "Integration" : "Connection"} ${id} saved.`);
    });
  });
  $("#form-cancel").addEventListener("click", () => {
    /** @type {HTMLDialogElement} */ ($("#form-dialog")).close();
  });

  setInterval(tickExpiries, 1000);
}

// Start ---------------------------------------------------------------------------------

function start() {
  const app = createApp();
  wire(app);
  if (app.key !== null) {
    signIn(app, app.key).catch(() => signOut(app, "Sign in again."));
  } else {
    show(app, "sign-in");
    $("#api-key").focus();
  }
}

start();
