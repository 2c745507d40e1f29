// @ts-check
/**
 * Lifecycle on the admin page: the webhooks view (list, add with the secret shown
 * once, deliveries, delete) and a connection's connect link, for the person who must
 * authorize it again. Both only call the `/v1` API.
 */
import { api } from "./api.js";
import { $, announce, confirmAction, detailMessage, el } from "./dom.js";

/** @typedef {import("./types.js").App} App */
/** @typedef {import("../../src/broker/webhooks/admin.js").WebhookView} WebhookView */
/** @typedef {import("../../src/broker/webhooks/admin.js").DeliveryView} DeliveryView */

/** Grants whose connections a person authorizes, so a connect link helps. */
const CONNECT_GRANTS = ["authorization_code", "password"];

/**
 * Shows or hides the Connect link button for the connection on the detail page.
 * @param {App} app
 */
export function renderConnectLink(app) {
  const c = app.connections.find((x) => x.id === app.detailId);
  const integration = c && app.integrations.find((i) => i.key === c.integration);
  const usable =
    c !== undefined &&
    integration !== undefined &&
    CONNECT_GRANTS.includes(integration.grantType) &&
    c.status !== "active";
  $("#connect-link").hidden = !usable;
  if (!usable) $("#connect-link-box").hidden = true;
  const expires = c?.refreshTokenExpiresAt;
  $("#refresh-token-expires").textContent = expires ? new Date(expires).toLocaleString() : "—";
}

/** @param {App} app */
export function wireLifecycle(app) {
  $("#connect-link").addEventListener("click", async () => {
    const id = app.detailId;
    if (id === null) return;
    try {
      const made = /** @type {{ url: string, expiresAt: string }} */ (
        await api(app, "POST", "/v1/connect-sessions", { connectionId: id })
      );
      /** @type {HTMLInputElement} */ ($("#connect-link-url")).value = made.url;
      $("#connect-link-box").hidden = false;
      detailMessage(
        `Connect link made: single use, until ${new Date(made.expiresAt).toLocaleString()}.`,
        "good",
      );
    } catch (error) {
      detailMessage(`No connect link: ${error instanceof Error ? error.message : error}`, "bad");
    }
  });
  $("#copy-connect-link").addEventListener("click", async () => {
    await navigator.clipboard.writeText(
      /** @type {HTMLInputElement} */ ($("#connect-link-url")).value,
    );
    announce("Connect link copied.");
  });
  $("#webhook-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = /** @type {HTMLFormElement} */ (event.currentTarget);
    const data = new FormData(form);
    const id = String(data.get("id") ?? "");
    try {
      const view = /** @type {WebhookView} */ (
        await api(app, "PUT", `/v1/webhooks/${encodeURIComponent(id)}`, {
          url: String(data.get("url") ?? ""),
        })
      );
      $("#webhook-secret").textContent = view.secret
        ? `Signing secret of ${id} (shown once, keep it now): ${view.secret}`
        : `Webhook ${id} updated; its signing secret is unchanged.`;
      form.reset();
      await renderWebhooks(app);
    } catch (error) {
      $("#webhook-secret").textContent =
        `Not saved: ${error instanceof Error ? error.message : error}`;
    }
  });
}

/**
 * The webhooks page: each endpoint with its last deliveries.
 * @param {App} app
 */
export async function renderWebhooks(app) {
  const { webhooks } = /** @type {{ webhooks: WebhookView[] }} */ (
    await api(app, "GET", "/v1/webhooks")
  );
  const rows = webhooks.map((w) =>
    el(
      "tr",
      {},
      el("td", {}, w.id),
      el("td", { class: "wrap" }, w.url),
      el("td", {}, w.events.length >= 7 ? "all" : w.events.join(", ")),
      el("td", {}, w.enabled ? "yes" : "no"),
      el(
        "td",
        {},
        el(
          "button",
          { type: "button", onclick: () => void showDeliveries(app, w.id) },
          "Deliveries",
        ),
        " ",
        el(
          "button",
          {
            type: "button",
            class: "danger link",
            onclick: async () => {
              if (!(await confirmAction(`Delete webhook ${w.id} and its deliveries?`))) return;
              await api(app, "DELETE", `/v1/webhooks/${encodeURIComponent(w.id)}`);
              await renderWebhooks(app);
            },
          },
          "Delete",
        ),
      ),
    ),
  );
  $("#webhooks-table tbody").replaceChildren(
    ...(rows.length > 0 ? rows : [el("tr", {}, el("td", { colspan: "5" }, "No webhooks yet."))]),
  );
}

/**
 * @param {App} app
 * @param {string} id
 */
async function showDeliveries(app, id) {
  const { deliveries } = /** @type {{ deliveries: DeliveryView[] }} */ (
    await api(app, "GET", `/v1/webhooks/${encodeURIComponent(id)}/deliveries?limit=20`)
  );
  $("#deliveries-title").textContent = `Deliveries of ${id}`;
  $("#deliveries-table tbody").replaceChildren(
    ...deliveries.map((d) =>
      el(
        "tr",
        {},
        el("td", {}, new Date(d.createdAt).toLocaleString()),
        el("td", {}, d.type),
        el("td", {}, d.connectionId),
        el("td", {}, el("span", { class: `badge ${d.status}` }, d.status)),
        el("td", {}, String(d.attempts)),
        el("td", {}, d.lastHttpStatus === null ? (d.lastError ?? "—") : String(d.lastHttpStatus)),
      ),
    ),
  );
  $("#deliveries").hidden = false;
}
