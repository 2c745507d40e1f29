/**
 * Each token's JSON body, written once. The token cache hands out the same view for as
 * long as it holds that token, and views are never changed once made, so a read of a
 * cached token sends a string it already has.
 */
import type { AccessToken } from "../broker/views.js";

export class TokenBodies {
  readonly #bodies = new WeakMap<AccessToken, string>();

  of(token: AccessToken): string {
    let body = this.#bodies.get(token);
    if (body === undefined) {
      body = JSON.stringify(token);
      this.#bodies.set(token, body);
    }
    return body;
  }
}
