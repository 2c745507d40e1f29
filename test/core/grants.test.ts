import { describe, expect, it } from "vitest";
import {
  CONNECTION_STATUSES,
  checkConnectionAgainst,
  connectionActions,
  GRANT_FIELDS,
  GRANT_TYPES,
  isTokenwardenError,
  parseConnection,
  parseIntegration,
} from "../../src/core/index.js";

/**
 * The table the admin page shapes its forms and buttons from must say what the model's
 * own checks say: a field the table gives one grant is required for it, and the page
 * hides no field a grant needs.
 */
const integrationFor = (grantType: (typeof GRANT_TYPES)[number]) =>
  parseIntegration({
    key: "acme",
    grantType,
    tokenUrl: "https://auth.acme.example/token",
    authorizationUrl: "https://auth.acme.example/authorize",
    clientId: "app",
  });

const allConnectionFields = {
  id: "c",
  integration: "acme",
  username: "ann",
  password: "pw",
  refreshToken: "rt",
};

describe("GRANT_FIELDS", () => {
  it("names each connection field the grant requires, and no other", () => {
    for (const grant of GRANT_TYPES) {
      const integration = integrationFor(grant);
      // With every grant-specific field given, the connection passes.
      expect(() =>
        checkConnectionAgainst(integration, parseConnection(allConnectionFields)),
      ).not.toThrow();
      const specific = new Set(Object.values(GRANT_FIELDS).flatMap((f) => f.connection));
      for (const field of specific) {
        const { [field]: _left, ...rest } = allConnectionFields as Record<string, string>;
        let failedOn: string | undefined;
        try {
          checkConnectionAgainst(integration, parseConnection(rest));
        } catch (error) {
          if (!isTokenwardenError(error)) throw error;
          failedOn = error.field;
        }
        const needed = (GRANT_FIELDS[grant].connection as readonly string[]).includes(field);
        expect({ grant, field, failedOn }).toEqual({
          grant,
          field,
          failedOn: needed ? field : undefined,
        });
      }
    }
  });

  it("gives authorizationUrl to authorization_code, which requires it", () => {
    expect(GRANT_FIELDS.authorization_code.integration).toContain("authorizationUrl");
    expect(() =>
      parseIntegration({
        key: "acme",
        grantType: "authorization_code",
        tokenUrl: "https://auth.acme.example/token",
      }),
    ).toThrow("authorizationUrl");
  });
});

describe("connectionActions", () => {
  it("allows nothing that needs a token on a pending or revoked connection", () => {
    for (const grant of GRANT_TYPES) {
      expect(connectionActions("pending_authorization", grant)).toMatchObject({
        refresh: false,
        revoke: false,
      });
      expect(connectionActions("revoked", grant).revoke).toBe(false);
    }
  });

  it("lets an unattended grant obtain a new token after a revoke, and nothing else", () => {
    expect(connectionActions("revoked", "client_credentials").refresh).toBe(true);
    expect(connectionActions("revoked", "password").refresh).toBe(true);
    expect(connectionActions("revoked", "authorization_code").refresh).toBe(false);
    expect(connectionActions("revoked", "refresh_token").refresh).toBe(false);
  });

  it("allows refresh and revoke in every status that holds a token; authorize for the code grant", () => {
    for (const status of CONNECTION_STATUSES) {
      if (status === "pending_authorization" || status === "revoked") continue;
      for (const grant of GRANT_TYPES) {
        expect(connectionActions(status, grant)).toEqual({
          authorize: grant === "authorization_code",
          refresh: true,
          revoke: true,
        });
      }
    }
  });
});
