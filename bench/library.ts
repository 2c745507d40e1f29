/**
 * In-process figures: getToken on a valid (cached) token, and one client credentials
 * grant against a local token endpoint beside openid-client and simple-oauth2 doing
 * the same grant in the same run.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as oidc from "openid-client";
import { ClientCredentials } from "simple-oauth2";
import { Bench } from "tinybench";
import { parseConnection, parseIntegration, resolveIntegration } from "../src/core/index.js";
import { Tokenwarden } from "../src/index.js";
import { HttpClient, requestClientCredentialsGrant } from "../src/oauth/index.js";
import { fmt, startServer } from "./lib.js";

export async function library(durationMs: number): Promise<string> {
  const as = await startServer("token-server", "3600");
  const dir = await mkdtemp(join(tmpdir(), "tokenwarden-bench-lib-"));
  const tw = await Tokenwarden.open({
    database: `sqlite:${join(dir, "tw.db")}`,
    secretKey: randomBytes(32).toString("base64"),
    scheduler: false,
  });
  // Pooled, as a Tokenwarden's grants are (without it each grant opens a connection).
  const http = new HttpClient();
  try {
    await tw.putIntegration({
      key: "lib",
      grantType: "client_credentials",
      tokenUrl: `${as.url}/token`,
      clientId: "c",
      clientSecret: "s",
    });
    await tw.putConnection({ id: "lib-1", integration: "lib" });
    await tw.getToken("lib-1");

    // Allocation per cached getToken: heap growth over many calls between two GCs.
    const gc = (globalThis as { gc?: () => void }).gc;
    let bytesPerCall = Number.NaN;
    if (gc !== undefined) {
      gc();
      const before = process.memoryUsage().heapUsed;
      const n = 200_000;
      for (let i = 0; i < n; i++) await tw.getToken("lib-1");
      bytesPerCall = (process.memoryUsage().heapUsed - before) / n;
    }

    const readBench = new Bench({ time: Math.min(durationMs, 3000) });
    readBench.add("Tokenwarden getToken (valid token)", async () => {
      await tw.getToken("lib-1");
    });
    await readBench.run();
    const read = stats(readBench.tasks[0]);

    const config = resolveIntegration(
      parseIntegration({
        key: "g",
        grantType: "client_credentials",
        tokenUrl: `${as.url}/token`,
        clientId: "c",
        clientSecret: "s",
      }),
      parseConnection({ id: "g", integration: "g" }),
    );
    const server = new oidc.Configuration(
      { issuer: as.url, token_endpoint: `${as.url}/token` },
      "c",
      "s",
      oidc.ClientSecretBasic("s"),
    );
    oidc.allowInsecureRequests(server); // the local endpoint is plain http
    const simple = new ClientCredentials({
      client: { id: "c", secret: "s" },
      auth: { tokenHost: as.url, tokenPath: "/token" },
    });
    const grantBench = new Bench({ time: Math.min(durationMs, 3000) });
    grantBench
      .add("Tokenwarden requestClientCredentialsGrant", async () => {
        await requestClientCredentialsGrant(config, { http });
      })
      .add("openid-client clientCredentialsGrant", async () => {
        await oidc.clientCredentialsGrant(server);
      })
      .add("simple-oauth2 ClientCredentials.getToken", async () => {
        await simple.getToken({});
      });
    await grantBench.run();
    const rows = grantBench.tasks.map((t) => {
      const r = stats(t);
      return `| ${t.name} | ${fmt(r.throughput.mean)} | ${(r.latency.p50 ?? 0).toFixed(3)} ms |`;
    });
    return [
      "### 6. Library",
      "",
      "| operation | ops/s | p50 |",
      "|---|---:|---:|",
      `| Tokenwarden getToken, valid token (cached) | ${fmt(read.throughput.mean)} | ${((read.latency.p50 ?? 0) * 1000).toFixed(2)} µs |`,
      "",
      `Heap allocated per cached getToken: ${Number.isNaN(bytesPerCall) ? "n/a (run with --expose-gc)" : `${bytesPerCall.toFixed(1)} bytes`} (the returned view is built once per token, not per call).`,
      "",
      "A client credentials grant against a local token endpoint (sequential, one at a time), same run:",
      "",
      "| client | grants/s | p50 |",
      "|---|---:|---:|",
      ...rows,
      "",
    ].join("\n");
  } finally {
    await tw.close();
    await http.close();
    await as.stop();
  }
}

interface Stats {
  throughput: { mean: number };
  latency: { p50?: number };
}

/** A completed task's figures (tinybench types a result as one of several states). */
function stats(task: { name: string; result?: unknown } | undefined): Stats {
  const result = task?.result as (Partial<Stats> & { error?: unknown }) | undefined;
  if (result?.throughput === undefined || result.latency === undefined) {
    throw new Error(
      `benchmark ${task?.name ?? "?"} did not complete: ${String(result?.error ?? "no result")}`,
    );
  }
  return result as Stats;
}
