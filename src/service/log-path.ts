/**
 * The path a request log line shows. The query is left out (it may carry an OAuth
 * code or state), and so is the segment after `connect`: a connect link's path holds
 * its token, and the token is the credential. Segments are compared decoded and
 * without case, so no spelling of the path that the router could still match keeps it.
 */
const REDACTED = "[redacted]";

export function loggablePath(url: string): string {
  const path = url.split("?")[0] ?? "";
  const segments = path.split("/");
  for (let i = 0; i < segments.length - 1; i++) {
    if (isConnectSegment(segments[i] ?? "")) segments[i + 1] = REDACTED;
  }
  return segments.join("/");
}

function isConnectSegment(segment: string): boolean {
  let decoded = segment;
  // Up to three levels of percent-encoding, as the proxy's confinement checks.
  for (let level = 0; level < 3 && decoded.includes("%"); level++) {
    try {
      decoded = decodeURIComponent(decoded);
    } catch {
      break;
    }
  }
  return decoded.toLowerCase() === "connect";
}
