/**
 * The device grant (RFC 8628) for a command-line user: prints the user code and where
 * to enter it (on any device), then waits while the answering side polls the token
 * endpoint: this process on the database, the service through one.
 */
import type { ConnectionView } from "../broker/views.js";
import { TokenwardenError } from "../core/errors.js";
import type { Backend } from "./backend.js";
import { type OutputOptions, spinner } from "./output.js";

export async function authorizeOnDevice(
  api: Backend,
  id: string,
  timeoutMs: number,
  output: OutputOptions,
): Promise<ConnectionView> {
  let progress: ReturnType<typeof spinner> | undefined;
  try {
    const view = await api.authorizeDevice(id, {
      timeoutMs,
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
    throw error;
  }
}

/** The person did not approve in time (the same words on the database and through a service). */
export function notApproved(timeoutMs: number): TokenwardenError {
  return new TokenwardenError("timeout", `not approved within ${timeoutMs / 1000} s`);
}

/** `waiting`, or `notApproved` once `timeoutMs` has passed. */
export async function withinTimeout<T>(waiting: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      waiting,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(notApproved(timeoutMs)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
