import {
  type IntegrationInput,
  parseConnection,
  parseIntegration,
  type ResolvedIntegration,
  resolveIntegration,
} from "../src/core/index.js";

/** An integration as one connection sees it, from the fields a test cares about. */
export function resolved(
  input: Partial<IntegrationInput> & Pick<IntegrationInput, "tokenUrl">,
  connection: Record<string, unknown> = {},
): ResolvedIntegration {
  const integration = parseIntegration({
    key: "test",
    grantType: "client_credentials",
    clientId: "app",
    ...input,
  });
  return resolveIntegration(
    integration,
    parseConnection({ id: "conn", integration: "test", ...connection }),
  );
}

/** Runs `fn` and returns what it threw (failing the test if it did not). */
export async function caught(fn: () => Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof Error) return error as Error & Record<string, unknown>;
    throw error;
  }
  throw new Error("expected a rejection");
}

/** JSON read back from the service in tests, navigated freely (assertions do the checking). */
// biome-ignore lint/suspicious/noExplicitAny: test responses are read loosely on purpose
export type LooseJson = any;
