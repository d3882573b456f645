"""Claiming due deliveries, keeping their leases, and recording attempts.

A claim locks the endpoints with due work ``FOR NO KEY UPDATE SKIP LOCKED`` (least recently
served first, so every endpoint gets its turn; the foreign-key checks of deliveries being
created meanwhile do not wait for that lock mode), computes what each may take now (its
concurrency cap minus deliveries under lease, its token bucket, one probe while its circuit
is half-open), takes that many due deliveries ``FOR NO KEY UPDATE SKIP LOCKED``, leases
them, and spends the tokens, all in one transaction. An endpoint without a rate limit of its
own has the default one (the claim's ``default_rate``; NULL: none).
"""

from __future__ import annotations

DUE_ENDPOINTS = """
SELECT e.id, e.url, e.max_in_flight,
       CASE WHEN r.rate IS NULL THEN NULL  -- (least and greatest skip NULLs)
            ELSE least(greatest(1.0, r.rate),
                       e.tokens + r.rate * extract(epoch FROM now() - e.tokens_at)) END AS tokens,
       e.consecutive_failures >= %(threshold)s AS probing,
       (SELECT count(*) FROM ops.webhook_deliveries f
        WHERE f.endpoint_id = e.id AND f.lease_until > now()) AS in_flight,
       e.retry_schedule_seconds
FROM ops.webhook_endpoints e
CROSS JOIN LATERAL (SELECT coalesce(e.rate_limit_per_second, %(default_rate)s::float8) AS rate) r
WHERE e.enabled AND coalesce(e.circuit_open_until, '-infinity') <= now()
  AND EXISTS (SELECT FROM ops.webhook_deliveries d
              WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= now()
                AND (d.lease_until IS NULL OR d.lease_until < now()))
ORDER BY e.claimed_at
LIMIT %(endpoints)s
FOR NO KEY UPDATE OF e SKIP LOCKED
"""

CLAIM = """
WITH wanted AS (
    SELECT * FROM unnest(%(endpoints)s::bigint[], %(counts)s::int[]) AS w(endpoint_id, n)
),
picked AS (
    SELECT p.id FROM wanted w CROSS JOIN LATERAL (
        SELECT d.id FROM ops.webhook_deliveries d
        WHERE d.endpoint_id = w.endpoint_id AND d.status = 'pending'
          AND d.next_attempt_at <= now() AND (d.lease_until IS NULL OR d.lease_until < now())
        ORDER BY d.next_attempt_at
        LIMIT w.n
        FOR NO KEY UPDATE SKIP LOCKED
    ) p
)
UPDATE ops.webhook_deliveries d
SET lease_owner = %(worker)s,
    lease_until = clock_timestamp() + %(lease)s * interval '1 second',
    attempts = d.attempts + 1,
    updated_at = clock_timestamp()
FROM picked p, ops.webhook_messages m
WHERE d.id = p.id AND m.id = d.message_id
RETURNING d.id, d.endpoint_id, d.attempts, d.trigger, m.uid, m.body, m.created_at
"""

SPEND_TOKENS = """
UPDATE ops.webhook_endpoints e
SET tokens = CASE WHEN coalesce(e.rate_limit_per_second, %(default_rate)s::float8) IS NULL
                  THEN 0 ELSE u.tokens - u.spent END,
    tokens_at = now(),
    claimed_at = clock_timestamp()
FROM unnest(%(endpoints)s::bigint[], %(tokens)s::float8[], %(spent)s::int[]) AS u(id, tokens, spent)
WHERE e.id = u.id
"""

SECRETS = """
SELECT endpoint_id, secret FROM ops.webhook_endpoint_secrets
WHERE endpoint_id = ANY(%(endpoints)s) AND (expires_at IS NULL OR expires_at > now())
ORDER BY endpoint_id, id DESC
"""

# Is there due work this claim could not lock (another worker holds the endpoint)?
DUE_ELSEWHERE = """
SELECT EXISTS (
    SELECT FROM ops.webhook_endpoints e
    WHERE e.enabled AND coalesce(e.circuit_open_until, '-infinity') <= now()
      AND EXISTS (SELECT FROM ops.webhook_deliveries d
                  WHERE d.endpoint_id = e.id AND d.status = 'pending'
                    AND d.next_attempt_at <= now()
                    AND (d.lease_until IS NULL OR d.lease_until < now())))
"""

HEARTBEAT = """
UPDATE ops.webhook_deliveries
SET lease_until = clock_timestamp() + %(lease)s * interval '1 second'
WHERE id = ANY(%(ids)s) AND lease_owner = %(worker)s AND status = 'pending'
"""

# Claimed but never attempted (a worker stopping): back to the queue at once.
RELEASE = """
UPDATE ops.webhook_deliveries
SET lease_owner = NULL, lease_until = NULL, attempts = attempts - 1
WHERE id = ANY(%(ids)s) AND lease_owner = %(worker)s AND status = 'pending'
"""

# One statement for a whole batch: arrays in, one row per attempt out.
INSERT_ATTEMPTS = """
INSERT INTO ops.webhook_attempts (delivery_id, attempt, trigger, worker, started_at, duration_ms,
    url, address, request_headers, body_sha256, response_status, response_headers,
    response_body, error_class, error, succeeded, next_attempt_at)
SELECT u.delivery_id, u.attempt, u.trigger, %(worker)s, u.started_at, u.duration_ms, u.url,
       u.address, u.request_headers::jsonb, u.body_sha256, u.response_status,
       u.response_headers::jsonb, u.response_body, u.error_class, u.error, u.succeeded,
       u.next_attempt_at
FROM unnest(%(delivery_id)s::bigint[], %(attempt)s::int[], %(trigger)s::text[],
            %(started_at)s::timestamptz[], %(duration_ms)s::float8[], %(url)s::text[],
            %(address)s::text[], %(request_headers)s::text[], %(body_sha256)s::text[],
            %(response_status)s::int[], %(response_headers)s::text[], %(response_body)s::text[],
            %(error_class)s::text[], %(error)s::text[], %(succeeded)s::bool[],
            %(next_attempt_at)s::timestamptz[])
     AS u(delivery_id, attempt, trigger, started_at, duration_ms, url, address, request_headers,
          body_sha256, response_status, response_headers, response_body, error_class, error,
          succeeded, next_attempt_at)
"""

# A success counts even when the lease was lost meanwhile; a failure only from the holder.
FINISH = """
UPDATE ops.webhook_deliveries d
SET status = CASE u.outcome WHEN 'retry' THEN 'pending' ELSE u.outcome END,
    next_attempt_at = CASE WHEN u.outcome = 'retry' THEN u.next_at END,
    trigger = CASE WHEN u.outcome = 'retry' THEN 'scheduled' ELSE d.trigger END,
    delivered_at = CASE WHEN u.outcome = 'succeeded' THEN u.done_at END,
    last_status = u.http_status,
    last_error = u.error,
    lease_owner = NULL,
    lease_until = NULL,
    updated_at = clock_timestamp()
FROM unnest(%(ids)s::bigint[], %(outcomes)s::text[], %(next_at)s::timestamptz[],
            %(statuses)s::int[], %(errors)s::text[], %(done_at)s::timestamptz[])
     AS u(id, outcome, next_at, http_status, error, done_at)
WHERE d.id = u.id AND d.status = 'pending'
  AND (u.outcome = 'succeeded' OR d.lease_owner = %(worker)s)
RETURNING d.id, u.outcome
"""

DEAD_LETTERS = """
INSERT INTO ops.webhook_dead_letters (direction, delivery_id, reason)
SELECT 'outbound', id, reason FROM unnest(%(ids)s::bigint[], %(reasons)s::text[]) AS u(id, reason)
"""

ENDPOINT_OUTCOMES = """
UPDATE ops.webhook_endpoints e
SET consecutive_failures = CASE WHEN u.ok > 0 THEN 0 ELSE e.consecutive_failures + u.failed END,
    failing_since = CASE WHEN u.ok > 0 THEN NULL
                         ELSE coalesce(e.failing_since, u.first_failure) END,
    last_success_at = CASE WHEN u.ok > 0 THEN u.last_ok ELSE e.last_success_at END,
    circuit_open_until = CASE
        WHEN u.ok > 0 THEN NULL
        WHEN e.consecutive_failures + u.failed >= %(threshold)s THEN
            clock_timestamp() + least(%(open_max)s, %(open_base)s * power(2, least(20,
                (e.consecutive_failures + u.failed) / %(threshold)s - 1))) * interval '1 second'
        ELSE e.circuit_open_until END,
    updated_at = clock_timestamp()
FROM unnest(%(ids)s::bigint[], %(ok)s::int[], %(failed)s::int[], %(first_failure)s::timestamptz[],
            %(last_ok)s::timestamptz[]) AS u(id, ok, failed, first_failure, last_ok)
WHERE e.id = u.id
  -- a run of successes leaves a healthy endpoint's row alone (but for a stamp a second)
  AND (u.failed > 0 OR e.consecutive_failures > 0 OR e.failing_since IS NOT NULL
       OR e.circuit_open_until IS NOT NULL OR e.last_success_at IS NULL
       OR e.last_success_at < u.last_ok - interval '1 second')
RETURNING e.id, e.enabled AND e.failing_since < now() - %(disable_after)s * interval '1 second'
"""

# Disabling an endpoint parks what it still had queued as dead letters (replayable later).
DISABLE = """
WITH off AS (
    UPDATE ops.webhook_endpoints
    SET enabled = false, disabled_reason = %(reason)s, disabled_at = clock_timestamp(),
        updated_at = clock_timestamp()
    WHERE id = %(id)s AND enabled
    RETURNING id, url
),
parked AS (
    UPDATE ops.webhook_deliveries d
    SET status = 'dead', lease_owner = NULL, lease_until = NULL, next_attempt_at = NULL,
        last_error = coalesce(d.last_error, %(reason)s), updated_at = clock_timestamp()
    FROM off WHERE d.endpoint_id = off.id AND d.status = 'pending'
    RETURNING d.id
),
letters AS (
    INSERT INTO ops.webhook_dead_letters (direction, delivery_id, reason)
    SELECT 'outbound', id, 'endpoint disabled: ' || %(reason)s FROM parked
)
SELECT off.id, off.url, (SELECT count(*) FROM parked) FROM off
"""

OPEN_INCIDENT = """
INSERT INTO ops.incidents (title, severity, status, services, started_at, runbook_url)
VALUES (%(title)s, 'medium', 'triggered', '{webhooks}', now(), %(runbook)s)
"""
