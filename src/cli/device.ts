/**
 * The device grant (RFC 8628) for a command-line user: prints the user code and where
 * to enter it (on any device), then waits while the answering side polls the token
 * endpoint: this process on the database, the service through one. Ctrl-C (or SIGTERM)
 * withdraws the flow before the command ends, so nothing goes on polling for a code
 * nobody will enter.
 */
import type { ConnectionView } from "../broker/views.js";
import { TokenwardenError } from "../core/errors.js";
import type { Backend } from "./backend.js";
import { type OutputOptions, spinner } from "./output.js";

/** The person interrupted the command; it ends with status 130 once it has cleaned up. */
export class Interrupted extends Error {
  constructor(message = "interrupted") {
    super(message);
    this.name = "Interrupted";
  }
}

export async function authorizeOnDevice(
  api: Backend,
  id: string,
  timeoutMs: number,
  output: OutputOptions,
): Promise<ConnectionView> {
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let progress: ReturnType<typeof spinner> | undefined;
  try {
    const view = await api.authorizeDevice(id, {
      timeoutMs,
      signal: interrupt.signal,
      onCode: (started) => {
        process.stderr.write(
          `\nTo authorize ${id}, open\n\n  ${started.verificationUri}\n\nand enter the code\n\n  ${started.userCode}\n\n` +
            (started.verificationUriComplete === null
              ? ""
              : `(or open ${started.verificationUriComplete})\n\n`) +
            `The code expires at ${started.expiresAt}.\n`,
        );
        progress = spinner("Waiting for approval (Ctrl-C to give up)...", output);
      },
    });
    progress?.stop("Authorized.");
    return view;
  } catch (error) {
    progress?.stop();
    if (!interrupt.signal.aborted) throw error;
    await withdraw(api, id);
    throw new Interrupted(`${id}: device authorization cancelled`);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** The flow withdrawn; one that already ended (or never started) has nothing to withdraw. */
async function withdraw(api: Backend, id: string): Promise<void> {
  try {
    await api.cancelDeviceAuthorization(id);
  } catch (error) {
    if (!(error instanceof TokenwardenError && error.code === "not_found")) throw error;
  }
}

/** The person did not approve in time (the same words on the database and through a service). */
export function notApproved(timeoutMs: number): TokenwardenError {
  return new TokenwardenError("timeout", `not approved within ${timeoutMs / 1000} s`);
}

/** `waiting`, or `notApproved` once `timeoutMs` has passed, or `Interrupted` once `signal` aborts. */
export async function withinTimeout<T>(
  waiting: Promise<T>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      waiting,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(notApproved(timeoutMs)), timeoutMs);
        onAbort = () => reject(new Interrupted());
        if (signal?.aborted === true) onAbort();
        else signal?.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
  }
}
