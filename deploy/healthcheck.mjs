// The container's health check: exits 0 when the service answers GET /healthz.
// Plain Node.js, because the slim image has neither curl nor wget.
const port = process.env.TOKENWARDEN_PORT ?? "4180";
try {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, {
    signal: AbortSignal.timeout(4000),
  });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
