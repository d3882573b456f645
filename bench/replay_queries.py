"""SQL of the KPI replay (:mod:`bench.replay`): each family's rows grouped by step of event time.

Every query returns one row per label set: the label values, then ``buckets`` (the step
numbers, in no order, ``ceil(epoch / step)``: a row is counted at the first sample at or after its
event time; ``%(bin)s`` is the step as an interval, ``%(seconds)s`` the same in whole
seconds), then one list per value, aligned with ``buckets``; lists are comma-separated
text, which numpy reads far faster than a driver's arrays. Event times and
label bounding are the collectors' own (``exporters/queries/``); rows later than
``%(end)s`` are left out. Gauge queries return signed changes (+1 when a row enters the
state, −1 when it leaves), which add up to the gauge.
"""

from __future__ import annotations

from collections.abc import Sequence

from exporters.queries.labels import bounded, bucket_index

# Grouping months of rows by step sorts millions of groups: in memory, not on disk.
WORK_MEM = "SELECT set_config('work_mem', '512MB', false)"


def _step(time: str) -> str:
    """The first sample at or after ``time``, as the start of the step before it (cheap
    timestamp arithmetic per row; :func:`_per_series` turns it into a step number)."""
    return f"date_bin(%(bin)s, {time} - interval '1 microsecond', 'epoch')"


def _step_after(time: str) -> str:
    """The first sample strictly after ``time``, as :func:`_step` gives it."""
    return f"date_bin(%(bin)s, {time}, 'epoch')"


def _per_series(labels: int, values: int, grouped: str) -> str:
    """``grouped`` returns (b, l1.., v1..) grouped by step and labels; this folds it into one
    row per label set with arrays."""
    label_columns = [f"l{i}" for i in range(1, labels + 1)]
    # No ORDER BY: every aggregate of a group reads its rows in one order, so the lists
    # stay aligned, and hashing the groups spares sorting millions of rows by label text.
    arrays = [f"string_agg(v{i}::float8::text, ',')" for i in range(1, values + 1)]
    steps = "string_agg((extract(epoch FROM b)::bigint / %(seconds)s + 1)::text, ',')"
    select = ", ".join([*label_columns, steps, *arrays])
    # Without labels, an empty input still makes one row of NULLs unless HAVING drops it.
    group = f" GROUP BY {', '.join(label_columns)}" if label_columns else " HAVING count(*) > 0"
    return f"SELECT {select} FROM ({grouped}) AS g{group}"


CONFIRMED = _per_series(
    1,
    2,
    f"""
SELECT {_step("confirmed_at")} AS b, {bounded("currency", "currencies")} AS l1,
       count(*) AS v1, coalesce(sum(amount_cents), 0) AS v2
FROM platform.bookings
WHERE confirmed_at <= %(end)s
GROUP BY 1, 2""",
)

SESSIONS = _per_series(
    0,
    1,
    f"""
SELECT {_step("started_at")} AS b, count(*) AS v1
FROM platform.site_sessions WHERE started_at <= %(end)s GROUP BY 1""",
)

# bench.plain_sql's definition of a double booking, counted at the confirmation.
CONFLICTS = _per_series(
    0,
    1,
    f"""
SELECT {_step("a.confirmed_at")} AS b, count(*) AS v1 FROM platform.bookings a
WHERE a.confirmed_at <= %(end)s AND EXISTS (
    SELECT FROM platform.bookings o
    WHERE o.resource_id = a.resource_id AND o.id <> a.id AND o.confirmed_at IS NOT NULL
      AND (o.confirmed_at, o.id) < (a.confirmed_at, a.id)
      AND o.start_at < a.end_at AND a.start_at < o.end_at
      AND (o.cancelled_at IS NULL OR o.cancelled_at > a.confirmed_at))
GROUP BY 1""",
)

SUCCEEDED = _per_series(
    3,
    3,
    f"""
SELECT {_step("captured_at")} AS b, livemode::text AS l1,
       {bounded("currency", "currencies")} AS l2, {bounded("psp", "psps")} AS l3,
       count(*) AS v1, coalesce(sum(amount_cents), 0) AS v2,
       count(*) FILTER (WHERE attempt > 1) AS v3
FROM platform.transactions
WHERE captured_at <= %(end)s
GROUP BY 1, 2, 3, 4""",
)

FAILED = _per_series(
    4,
    2,
    f"""
SELECT {_step("failed_at")} AS b, livemode::text AS l1,
       {bounded("failure_code", "failure_codes")} AS l2,
       {bounded("currency", "currencies")} AS l3, {bounded("psp", "psps")} AS l4,
       count(*) AS v1, coalesce(sum(amount_cents), 0) AS v2
FROM platform.transactions
WHERE failed_at <= %(end)s AND status = 'failed'
GROUP BY 1, 2, 3, 4, 5""",
)

RETRIES = _per_series(
    1,
    1,
    f"""
SELECT {_step("created_at")} AS b, livemode::text AS l1, count(*) AS v1
FROM platform.transactions
WHERE created_at <= %(end)s AND attempt > 1
GROUP BY 1, 2""",
)

REFUNDS = _per_series(
    2,
    2,
    f"""
SELECT {_step("r.created_at")} AS b, t.livemode::text AS l1,
       {bounded("t.currency", "currencies")} AS l2,
       count(*) AS v1, coalesce(sum(r.amount_cents), 0) AS v2
FROM platform.refunds r JOIN platform.transactions t ON t.id = r.transaction_id
WHERE r.created_at <= %(end)s
GROUP BY 1, 2, 3""",
)

CHARGEBACKS = _per_series(
    1,
    1,
    f"""
SELECT {_step("c.created_at")} AS b, t.livemode::text AS l1, count(*) AS v1
FROM platform.chargebacks c JOIN platform.transactions t ON t.id = c.transaction_id
WHERE c.created_at <= %(end)s
GROUP BY 1, 2""",
)

API_REQUESTS = _per_series(
    4,
    1,
    f"""
SELECT {_step("updated_at")} AS b, {bounded("route", "routes")} AS l1,
       {bounded("method", "methods")} AS l2, (status_code / 100)::text || 'xx' AS l3,
       livemode::text AS l4, count(*) AS v1
FROM platform.api_logs
WHERE updated_at <= %(end)s
GROUP BY 1, 2, 3, 4, 5""",
)


def api_durations(bounds_ms: Sequence[float]) -> str:
    """(route, bucket index) → observations and their sum in seconds."""
    return _per_series(
        2,
        2,
        f"""
SELECT {_step("updated_at")} AS b, {bounded("route", "routes")} AS l1,
       {bucket_index("duration_ms", bounds_ms)} AS l2,
       count(*) AS v1, sum(duration_ms) / 1000.0 AS v2
FROM platform.api_logs
WHERE updated_at <= %(end)s
GROUP BY 1, 2, 3""",
    )


CALENDAR_SYNCS = _per_series(
    2,
    1,
    f"""
SELECT {_step("finished_at")} AS b, {bounded("provider", "providers")} AS l1,
       status AS l2, count(*) AS v1
FROM platform.calendar_syncs
WHERE finished_at <= %(end)s
GROUP BY 1, 2, 3""",
)

SERVICE_CHECKS = _per_series(
    2,
    1,
    f"""
SELECT {_step("updated_at")} AS b, {bounded("service", "services")} AS l1,
       CASE WHEN ok THEN 'ok' ELSE 'failed' END AS l2, count(*) AS v1
FROM platform.service_checks
WHERE updated_at <= %(end)s
GROUP BY 1, 2, 3""",
)


def ticket_resolutions(bounds_seconds: Sequence[float]) -> str:
    """Bucket index → resolved tickets and their resolution seconds."""
    seconds = "extract(epoch FROM resolved_at - opened_at)"
    return _per_series(
        1,
        2,
        f"""
SELECT {_step("resolved_at")} AS b, {bucket_index(seconds, bounds_seconds)} AS l1,
       count(*) AS v1, coalesce(sum({seconds}), 0) AS v2
FROM platform.support_tickets
WHERE resolved_at <= %(end)s AND status = 'resolved'
GROUP BY 1, 2""",
    )


# Open tickets: +1 when opened, −1 when resolved (a ticket whose status is not 'resolved'
# is open, whatever its resolved_at says, as the exporter's gauge counts it).
TICKETS_OPEN = _per_series(
    0,
    1,
    f"""
SELECT b, sum(d) AS v1 FROM (
    SELECT {_step("opened_at")} AS b, 1 AS d FROM platform.support_tickets
    WHERE opened_at <= %(end)s
    UNION ALL
    SELECT {_step("resolved_at")}, -1 FROM platform.support_tickets
    WHERE status = 'resolved' AND opened_at <= %(end)s AND resolved_at <= %(end)s
) AS e GROUP BY 1""",
)

# Stuck bookings: pending from created_at until confirmed, cancelled or failed (the
# history keeps each booking's final status and its transition times); counted once
# pending for longer than %(after)s seconds.
UNPROCESSED = _per_series(
    0,
    1,
    f"""
WITH p AS (
    SELECT created_at + %(after)s * interval '1 second' AS stuck,
           coalesce(confirmed_at, cancelled_at,
                    CASE WHEN status = 'failed' THEN updated_at END) AS left_at
    FROM platform.bookings WHERE created_at <= %(end)s
)
SELECT b, sum(d) AS v1 FROM (
    SELECT {_step_after("stuck")} AS b, 1 AS d FROM p
    WHERE stuck < %(end)s AND (left_at IS NULL OR left_at > stuck)
    UNION ALL
    SELECT {_step("left_at")}, -1 FROM p
    WHERE stuck < %(end)s AND left_at > stuck AND left_at <= %(end)s
) AS e GROUP BY 1""",
)

# Per service and step, its latest check in that step: (service, buckets, checked_at as
# unix seconds, ok as 0/1).
SERVICE_LATEST = _per_series(
    1,
    2,
    f"""
SELECT DISTINCT ON (1, 2) {_step("checked_at")} AS b, {bounded("service", "services")} AS l1,
       extract(epoch FROM checked_at) AS v1, ok::int AS v2
FROM platform.service_checks
WHERE checked_at <= %(end)s
ORDER BY 1, 2, checked_at DESC""",
)

# The 24 h reconciliation window, as changes to (internal cents, |internal − PSP| cents,
# mismatches). A transaction enters at created_at + grace as a missing report (unless the
# PSP reported it by then), turns into its reported figure when the PSP's report is received,
# and leaves the window 24 h after its creation. The PSP's final figure stands for every
# report (the history keeps no earlier one).
RECONCILIATION = _per_series(
    0,
    3,
    f"""
WITH tx AS (
    SELECT t.created_at AS c, t.amount_cents::float8 AS a, p.amount_cents::float8 AS p,
           greatest(p.received_at, t.created_at) AS r
    FROM platform.transactions t
    LEFT JOIN platform.psp_transactions p ON p.psp_id = t.psp_id
    WHERE t.created_at >= %(since)s AND t.created_at <= %(end)s
), s AS (
    SELECT c, a, p,
           CASE WHEN r <= c + interval '24 hours' AND r <= %(end)s THEN r END AS r,
           (r IS NULL OR r > c + %(grace)s * interval '1 second') AS missing,
           abs(a) AS md, abs(a - coalesce(p, 0)) AS rd, (p IS DISTINCT FROM a)::int AS rm
    FROM tx
)
SELECT b, sum(di) AS v1, sum(dd) AS v2, sum(dm) AS v3 FROM (
    SELECT {_step_after("c + %(grace)s * interval '1 second'")} AS b,
           a AS di, md AS dd, 1 AS dm
    FROM s WHERE missing AND c + %(grace)s * interval '1 second' < %(end)s
    UNION ALL
    SELECT {_step("r")}, a - CASE WHEN missing THEN a ELSE 0 END,
           rd - CASE WHEN missing THEN md ELSE 0 END, rm - missing::int
    FROM s WHERE r IS NOT NULL
    UNION ALL
    SELECT {_step_after("c + interval '24 hours'")},
           -a, -CASE WHEN r IS NOT NULL THEN rd ELSE md END,
           -CASE WHEN r IS NOT NULL THEN rm ELSE 1 END
    FROM s WHERE c + interval '24 hours' < %(end)s AND (r IS NOT NULL OR missing)
) AS e GROUP BY 1""",
)

# The history's last event: where a replay that covers it ends by default.
HISTORY_END = """
SELECT greatest(
    (SELECT max(updated_at) FROM platform.bookings),
    (SELECT max(updated_at) FROM platform.transactions),
    (SELECT max(created_at) FROM platform.refunds),
    (SELECT max(created_at) FROM platform.chargebacks),
    (SELECT max(updated_at) FROM platform.api_logs),
    (SELECT max(started_at) FROM platform.site_sessions),
    (SELECT max(finished_at) FROM platform.calendar_syncs),
    (SELECT max(updated_at) FROM platform.service_checks),
    (SELECT max(greatest(opened_at, resolved_at)) FROM platform.support_tickets))
"""
