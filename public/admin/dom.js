// @ts-check
/** Small DOM helpers: building elements without innerHTML (no markup from data, ever). */

/**
 * The element matching `selector`; the page's markup is fixed, so a miss is a bug.
 * @template {Element} [T=HTMLElement]
 * @param {string} selector
 * @param {ParentNode} [root]
 * @returns {T}
 */
export function $(selector, root = document) {
  const node = root.querySelector(selector);
  if (node === null) throw new Error(`no element ${selector}`);
  return /** @type {T} */ (node);
}

/**
 * @typedef {string | number | boolean | null | undefined | ((event: Event) => void)} Attribute
 * @typedef {Node | string | number | null | undefined | false} Child
 */

/**
 * An element with attributes (`on…` ones become listeners) and children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, Attribute>} [attributes]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = String(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The page's status line (a polite live region); "" clears it. */
export function announce(/** @type {string} */ text) {
  $("#announce").textContent = text;
}

/**
 * A message on the connection's page.
 * @param {string} text
 * @param {"good" | "bad"} [tone]
 */
export function detailMessage(text, tone) {
  const node = $("#detail-message");
  node.textContent = text;
  node.className = `message ${tone ?? ""}`;
}

/**
 * Asks for a confirmation in the page's dialog.
 * @param {string} text
 * @returns {Promise<boolean>}
 */
export function confirmAction(text) {
  const dialog = $("#confirm-dialog", document);
  const modal = /** @type {HTMLDialogElement} */ (dialog);
  $("#confirm-text").textContent = text;
  modal.returnValue = "";
  modal.showModal();
  return new Promise((resolve) => {
    modal.addEventListener("close", () => resolve(modal.returnValue === "yes"), { once: true });
  });
}
