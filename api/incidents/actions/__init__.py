"""One-click actions: a confirmation page (GET, never changes anything), then a POST with
a CSRF token and a server-minted idempotency key (or, for API keys, an ``Idempotency-Key``
header) that runs the effect once and records it in the audit log, the incident timeline
and a Grafana annotation."""
