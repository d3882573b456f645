"""Endpoints and their signing secrets."""

from __future__ import annotations

COLUMNS = (
    "e.id, e.url, e.description, e.event_types, e.enabled, e.disabled_reason, e.disabled_at, "
    "e.rate_limit_per_second, e.max_in_flight, e.consecutive_failures, e.circuit_open_until, "
    "e.failing_since, e.last_success_at, e.created_at, e.updated_at, e.retry_schedule_seconds"
)

CREATE = f"""
WITH e AS (
    INSERT INTO ops.webhook_endpoints (url, description, event_types, enabled,
        rate_limit_per_second, max_in_flight, tokens, retry_schedule_seconds)
    VALUES (%(url)s, %(description)s, %(event_types)s, %(enabled)s,
        %(rate_limit_per_second)s::float8, %(max_in_flight)s,
        coalesce(%(rate_limit_per_second)s::float8, 0), %(retry_schedule_seconds)s::float8[])
    RETURNING *
),
s AS (
    INSERT INTO ops.webhook_endpoint_secrets (endpoint_id, secret, hint)
    SELECT id, %(secret)s, %(hint)s FROM e
)
SELECT {COLUMNS} FROM e
"""

GET = f"SELECT {COLUMNS} FROM ops.webhook_endpoints e WHERE e.id = %(id)s"

# Each field changes only when its flag says so (a rate limit may be set back to none).
UPDATE = f"""
UPDATE ops.webhook_endpoints e SET
    url = CASE WHEN %(set_url)s THEN %(url)s::text ELSE e.url END,
    description = CASE WHEN %(set_description)s THEN %(description)s::text ELSE e.description END,
    event_types = CASE WHEN %(set_event_types)s THEN %(event_types)s::text[] ELSE e.event_types END,
    rate_limit_per_second = CASE WHEN %(set_rate_limit_per_second)s
                                 THEN %(rate_limit_per_second)s::float8
                                 ELSE e.rate_limit_per_second END,
    max_in_flight = CASE WHEN %(set_max_in_flight)s THEN %(max_in_flight)s::int
                         ELSE e.max_in_flight END,
    retry_schedule_seconds = CASE WHEN %(set_retry_schedule_seconds)s
                                  THEN %(retry_schedule_seconds)s::float8[]
                                  ELSE e.retry_schedule_seconds END,
    enabled = e.enabled OR %(enable)s,
    disabled_reason = CASE WHEN %(enable)s THEN NULL ELSE e.disabled_reason END,
    disabled_at = CASE WHEN %(enable)s THEN NULL ELSE e.disabled_at END,
    consecutive_failures = CASE WHEN %(enable)s THEN 0 ELSE e.consecutive_failures END,
    circuit_open_until = CASE WHEN %(enable)s THEN NULL ELSE e.circuit_open_until END,
    failing_since = CASE WHEN %(enable)s THEN NULL ELSE e.failing_since END,
    updated_at = clock_timestamp()
WHERE e.id = %(id)s
RETURNING {COLUMNS}
"""

DELETE = "DELETE FROM ops.webhook_endpoints WHERE id = %(id)s RETURNING id, url"

SECRETS = """
SELECT id, coalesce(hint, '') || '...', created_at, expires_at,
       expires_at IS NULL OR expires_at > now() AS active
FROM ops.webhook_endpoint_secrets WHERE endpoint_id = %(id)s ORDER BY id
"""

# The new secret signs at once; the ones it replaces keep signing for the grace period.
ROTATE = """
WITH old AS (
    UPDATE ops.webhook_endpoint_secrets
    SET expires_at = least(coalesce(expires_at, 'infinity'),
                           clock_timestamp() + %(grace)s * interval '1 second')
    WHERE endpoint_id = %(id)s AND (expires_at IS NULL OR expires_at > now())
    RETURNING expires_at
)
INSERT INTO ops.webhook_endpoint_secrets (endpoint_id, secret, hint)
SELECT id, %(secret)s, %(hint)s FROM ops.webhook_endpoints WHERE id = %(id)s
RETURNING id, (SELECT max(expires_at) FROM old)
"""

BY_URL = "SELECT id FROM ops.webhook_endpoints WHERE url = %(url)s ORDER BY id LIMIT 1"
