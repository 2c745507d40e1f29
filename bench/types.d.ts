// The little of simple-oauth2 the library benchmark uses (it ships no types).
declare module "simple-oauth2" {
  export class ClientCredentials {
    constructor(options: {
      client: { id: string; secret: string };
      auth: { tokenHost: string; tokenPath?: string };
    });
    getToken(params: Record<string, unknown>): Promise<unknown>;
  }
}
