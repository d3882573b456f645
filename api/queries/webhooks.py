"""The gateway's drilldowns: every webhook in and out, endpoints, dead letters, rejections."""

from __future__ import annotations

from api.queries.listing import Listing

WEBHOOKS = Listing(
    columns=(
        "l.id, l.direction, l.status, l.event_type, l.target, l.provider, l.endpoint_id, "
        "l.attempts, l.last_status, l.last_error, l.next_attempt_at, l.created_at, l.done_at, "
        "l.reference"
    ),
    source="ops.webhook_log l",
    id_column="l.id",
    time_column="l.created_at",
    sorts={"created_at": "l.created_at", "id": "l.id"},
    conditions={
        "direction": "l.direction = %(direction)s",
        "status": "l.status = ANY(%(status)s)",
        "event_type": "l.event_type = %(event_type)s",
        "endpoint_id": "l.endpoint_id = %(endpoint_id)s",
        "provider": "l.provider = %(provider)s",
        "reference": "l.reference = %(reference)s",
    },
)

ENDPOINT_COLUMNS = (
    "e.id, e.url, e.description, e.event_types, e.enabled, e.disabled_reason, e.disabled_at, "
    "e.rate_limit_per_second, e.max_in_flight, e.consecutive_failures, e.circuit_open_until, "
    "e.failing_since, e.last_success_at, e.created_at, "
    "array_to_string(e.retry_schedule_seconds, ', ') AS retry_schedule"
)
ENDPOINTS = Listing(
    columns=ENDPOINT_COLUMNS,
    source="ops.webhook_endpoints e",
    id_column="e.id",
    time_column="e.created_at",
    sorts={"created_at": "e.created_at", "id": "e.id"},
    conditions={"enabled": "e.enabled = %(enabled)s"},
)

DEAD_LETTERS = Listing(
    columns=(
        "l.id, l.direction, coalesce(l.delivery_id, l.inbound_event_id) AS webhook_id, "
        "l.reason, l.created_at, l.resolved_at, l.resolution"
    ),
    source="ops.webhook_dead_letters l",
    id_column="l.id",
    time_column="l.created_at",
    sorts={"created_at": "l.created_at", "id": "l.id"},
    conditions={
        "direction": "l.direction = %(direction)s",
        "open": "(l.resolved_at IS NULL) = %(open)s",
    },
)

REJECTIONS = Listing(
    columns=(
        "r.id, r.provider, r.reason, r.detail, r.status_code, r.body_bytes, "
        "host(r.remote_addr) AS remote_addr, r.received_at, r.headers::text AS headers, "
        "encode(r.body_sha256, 'hex') AS body_sha256, encode(r.body, 'escape') AS body"
    ),
    source="ops.webhook_inbound_rejections r",
    id_column="r.id",
    time_column="r.received_at",
    sorts={"received_at": "r.received_at", "id": "r.id"},
    conditions={
        "provider": "r.provider = %(provider)s",
        "reason": "r.reason = %(reason)s",
    },
)

DELIVERY = """
SELECT d.id, d.status, d.trigger, d.attempts, d.next_attempt_at, d.last_status, d.last_error,
       d.created_at, d.delivered_at, d.endpoint_id, e.url
FROM ops.webhook_deliveries d JOIN ops.webhook_endpoints e ON e.id = d.endpoint_id
WHERE d.id = %(id)s
"""
MESSAGE = """
SELECT m.id, m.uid, m.event_type, m.source, m.source_key, m.created_at, m.body
FROM ops.webhook_messages m JOIN ops.webhook_deliveries d ON d.message_id = m.id
WHERE d.id = %(id)s
"""
ATTEMPTS = """
SELECT a.attempt, a.trigger, a.started_at, a.duration_ms, a.address, a.response_status,
       a.error_class, a.error, a.succeeded, a.next_attempt_at, a.worker,
       a.request_headers::text AS request_headers, a.body_sha256,
       a.response_headers::text AS response_headers, a.response_body
FROM ops.webhook_attempts a WHERE a.delivery_id = %(id)s ORDER BY a.id
"""

INBOUND_EVENT = """
SELECT i.id, i.provider, i.event_key, i.livemode, i.event_type, i.received_at, i.signature,
       host(i.remote_addr) AS remote_addr, i.status, i.outcome, i.attempts, i.duplicates,
       i.last_duplicate_at, i.next_attempt_at, i.last_error, i.processed_at,
       i.headers::text AS headers, convert_from(i.body, 'UTF8') AS body
FROM ops.webhook_inbound_events i WHERE i.id = %(id)s
"""
INBOUND_ATTEMPTS = """
SELECT attempt, started_at, duration_ms, succeeded, outcome, error, worker
FROM ops.webhook_inbound_attempts WHERE event_id = %(id)s ORDER BY id
"""
INBOUND_DEAD_LETTERS = """
SELECT id, reason, created_at, resolved_at, resolution
FROM ops.webhook_dead_letters WHERE inbound_event_id = %(id)s ORDER BY id
"""

ENDPOINT = (
    f"SELECT {ENDPOINT_COLUMNS}, e.updated_at FROM ops.webhook_endpoints e WHERE e.id = %(id)s"
)
ENDPOINT_SECRETS = """
SELECT id, coalesce(hint, '') || '...' AS prefix, created_at, expires_at,
       expires_at IS NULL OR expires_at > now() AS active
FROM ops.webhook_endpoint_secrets WHERE endpoint_id = %(id)s ORDER BY id
"""
ENDPOINT_RECENT = """
SELECT d.id, m.event_type, d.status, d.attempts, d.last_status, d.created_at, d.delivered_at
FROM ops.webhook_deliveries d JOIN ops.webhook_messages m ON m.id = d.message_id
WHERE d.endpoint_id = %(id)s ORDER BY d.created_at DESC, d.id DESC LIMIT 20
"""
# The endpoint page's delivery log: newest first, a page at a time (before: a delivery id).
ENDPOINT_LOG = """
SELECT d.id, m.event_type, m.uid, d.trigger, d.status, d.attempts, d.last_status,
       d.next_attempt_at, d.created_at, d.delivered_at
FROM ops.webhook_deliveries d JOIN ops.webhook_messages m ON m.id = d.message_id
WHERE d.endpoint_id = %(id)s AND (%(before)s::bigint IS NULL OR d.id < %(before)s)
ORDER BY d.id DESC LIMIT %(limit)s
"""
ENDPOINT_COUNTS = """
SELECT status, count(*) FROM ops.webhook_deliveries WHERE endpoint_id = %(id)s GROUP BY 1
"""
MESSAGE_DELIVERY = """
SELECT id FROM ops.webhook_deliveries WHERE message_id = %(message)s AND endpoint_id = %(id)s
"""
