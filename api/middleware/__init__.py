"""Pure ASGI middleware, outermost first: security headers (on every response, the
last-resort 500 included), request context (id, JSON access log, metrics, last-resort 500),
body size limit, CSRF."""
