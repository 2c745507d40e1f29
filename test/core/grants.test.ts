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
    deviceAuthorizationUrl: "https://auth.acme.example/device",
    clientPrivateKey: "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----",
    clientId: "app",
  });

const allConnectionFields = {
  id: "c",
  integration: "acme",
  username: "ann",
  password: "pw",
  refreshToken: "rt",
  subjectToken: "st",
};

/** token_exchange takes one of its two subject fields, never both: checked on its own below. */
const ONE_OF = new Set(["subjectConnectionId", "subjectToken"]);

describe("GRANT_FIELDS", () => {
  it("names each connection field the grant requires, and no other", () => {
    for (const grant of GRANT_TYPES.filter((g) => g !== "token_exchange")) {
      const integration = integrationFor(grant);
      // With every grant-specific field given, the connection passes.
      expect(() =>
        checkConnectionAgainst(integration, parseConnection(allConnectionFields)),
      ).not.toThrow();
      const specific = new Set(
        Object.values(GRANT_FIELDS)
          .flatMap((f) => f.connection)
          .filter((f) => !ONE_OF.has(f)),
      );
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

  it("gives token_exchange exactly one subject: another connection or a given token", () => {
    const integration = integrationFor("token_exchange");
    expect([...GRANT_FIELDS.token_exchange.connection].sort()).toEqual([...ONE_OF].sort());
    const base = { id: "c", integration: "acme" };
    const check = (extra: Record<string, string>) => () =>
      checkConnectionAgainst(integration, parseConnection({ ...base, ...extra }));
    expect(check({ subjectToken: "st" })).not.toThrow();
    expect(check({ subjectConnectionId: "other" })).not.toThrow();
    expect(check({})).toThrow("subjectConnectionId");
    expect(check({ subjectToken: "st", subjectConnectionId: "other" })).toThrow("exactly one");
    expect(check({ subjectConnectionId: "c" })).toThrow("another connection");
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
    expect(connectionActions("revoked", "device_code").refresh).toBe(false);
    expect(connectionActions("revoked", "jwt_bearer").refresh).toBe(true);
    expect(connectionActions("revoked", "token_exchange").refresh).toBe(true);
  });

  it("allows refresh and revoke in every status that holds a token; authorize for the code grant", () => {
    for (const status of CONNECTION_STATUSES) {
      if (status === "pending_authorization" || status === "revoked") continue;
      for (const grant of GRANT_TYPES) {
        expect(connectionActions(status, grant)).toEqual({
          authorize: grant === "authorization_code" || grant === "device_code",
          refresh: true,
          revoke: true,
        });
      }
    }
  });
});
