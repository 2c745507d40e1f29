/**
 * The device grant (RFC 8628) for a command-line user: prints the user code and where
 * to enter it (on any device), then waits while this process polls the token endpoint.
 */
import type { Tokenwarden } from "../broker/tokenwarden.js";
import { TokenwardenError } from "../core/errors.js";
import { type OutputOptions, spinner } from "./output.js";

export async function authorizeOnDevice(
  tw: Tokenwarden,
  id: string,
  timeoutMs: number,
  output: OutputOptions,
): ReturnType<Tokenwarden["waitForDeviceAuthorization"]> {
  const started = await tw.startDeviceAuthorization(id);
  process.stderr.write(
    `\nTo authorize ${id}, open\n\n  ${started.verificationUri}\n\nand enter the code\n\n  ${started.userCode}\n\n` +
      (started.verificationUriComplete === null
        ? ""
        : `(or open ${started.verificationUriComplete})\n\n`) +
      `The code expires at ${started.expiresAt}.\n`,
  );
  const progress = spinner("Waiting for approval (Ctrl-C to give up)...", output);
  let timer: NodeJS.Timeout | undefined;
  try {
    const view = await Promise.race([
      tw.waitForDeviceAuthorization(id),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(
          () =>
            reject(new TokenwardenError("timeout", `not approved within ${timeoutMs / 1000} s`)),
          timeoutMs,
        );
      }),
    ]);
    progress.stop("Authorized.");
    return view;
  } catch (error) {
    progress.stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
