"""The contract KPIs as plain SQL over the raw rows (seed 001's queries and DESIGN.md's
definitions): what query-exporter runs, and what opsdeck's values are checked against."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from core.psp_webhooks import PROVIDERS
from core.settings import Settings

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass(frozen=True)
class PlainQuery:
    name: str
    sql: str
    labels: tuple[str, ...]  # the first columns, in order
    metrics: tuple[tuple[str, str], ...]  # (metric, help) for the remaining columns


def _in(column: str, values: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"CASE WHEN {column}::text IN ({listed}) THEN {column}::text ELSE 'other' END"


def _buckets(expression: str, bounds: tuple[float, ...], metric: str) -> str:
    """One column per cumulative bucket, named <metric>__le_<n> (renamed on output)."""
    columns = [
        f"count(*) FILTER (WHERE {expression} <= {b!r}) AS {metric}__le_{i}"
        for i, b in enumerate(bounds)
    ]
    return ",\n       ".join([*columns, f"count(*) AS {metric}__le_{len(bounds)}"])


def queries(settings: Settings) -> list[PlainQuery]:
    ex = settings.exporter
    stale = settings.thresholds.service_check_stale_seconds
    grace = settings.thresholds.reconciliation_grace_seconds
    currency = _in("currency", ex.currencies)
    mode = "livemode::text"
    api_bounds_ms = tuple(b * 1000 for b in ex.api_duration_buckets_seconds)
    return [
        PlainQuery(
            "bookings",
            f"""
SELECT {currency} AS currency, count(*) AS opsdeck_bookings_confirmed_total,
       sum(amount_cents) AS opsdeck_booked_revenue_cents_total
FROM platform.bookings WHERE confirmed_at IS NOT NULL GROUP BY 1""",
            ("currency",),
            (
                ("opsdeck_bookings_confirmed_total", "confirmed bookings"),
                ("opsdeck_booked_revenue_cents_total", "booked revenue"),
            ),
        ),
        PlainQuery(
            "sessions",
            "SELECT count(*) AS opsdeck_site_sessions_total FROM platform.site_sessions",
            (),
            (("opsdeck_site_sessions_total", "site sessions"),),
        ),
        PlainQuery(
            "conflicts",
            """
SELECT count(*) AS opsdeck_booking_conflicts_total FROM platform.bookings a
WHERE a.confirmed_at IS NOT NULL AND EXISTS (
    SELECT FROM platform.bookings b
    WHERE b.resource_id = a.resource_id AND b.id <> a.id AND b.confirmed_at IS NOT NULL
      AND (b.confirmed_at, b.id) < (a.confirmed_at, a.id)
      AND b.start_at < a.end_at AND a.start_at < b.end_at
      AND (b.cancelled_at IS NULL OR b.cancelled_at > a.confirmed_at))""",
            (),
            (("opsdeck_booking_conflicts_total", "double bookings"),),
        ),
        PlainQuery(
            "unprocessed",
            f"""
SELECT count(*) AS opsdeck_bookings_unprocessed FROM platform.bookings
WHERE status = 'pending' AND created_at < now() - interval '{settings.thresholds.unprocessed_after_seconds} seconds'""",
            (),
            (("opsdeck_bookings_unprocessed", "stuck bookings"),),
        ),
        PlainQuery(
            "succeeded",
            f"""
SELECT {mode} AS livemode, {currency} AS currency, count(*) AS attempts_succeeded,
       sum(amount_cents) AS volume_succeeded, count(*) FILTER (WHERE attempt > 1) AS recovered
FROM platform.transactions WHERE captured_at IS NOT NULL GROUP BY 1, 2""",
            ("livemode", "currency"),
            (("attempts_succeeded", ""), ("volume_succeeded", ""), ("recovered", "")),
        ),
        PlainQuery(
            "failed",
            f"""
SELECT {mode} AS livemode, {_in("failure_code", ex.failure_codes)} AS failure_code, {currency} AS currency,
       count(*) AS attempts_failed, sum(amount_cents) AS volume_failed
FROM platform.transactions WHERE status = 'failed' GROUP BY 1, 2, 3""",
            ("livemode", "failure_code", "currency"),
            (("attempts_failed", ""), ("volume_failed", "")),
        ),
        PlainQuery(
            "psp_attempts",
            f"""
SELECT {_in("psp", PROVIDERS)} AS psp, outcome, {mode} AS livemode,
       count(*) AS opsdeck_psp_payment_attempts_total
FROM (SELECT psp, 'succeeded' AS outcome, livemode FROM platform.transactions
      WHERE captured_at IS NOT NULL
      UNION ALL
      SELECT psp, 'failed', livemode FROM platform.transactions WHERE status = 'failed') a
GROUP BY 1, 2, 3""",
            ("psp", "outcome", "livemode"),
            (("opsdeck_psp_payment_attempts_total", "payment attempts by PSP"),),
        ),
        PlainQuery(
            "retries",
            f"""
SELECT {mode} AS livemode, count(*) AS opsdeck_payment_retries_total
FROM platform.transactions WHERE attempt > 1 GROUP BY 1""",
            ("livemode",),
            (("opsdeck_payment_retries_total", "retries"),),
        ),
        PlainQuery(
            "refunds",
            f"""
SELECT t.livemode::text AS livemode, {_in("t.currency", ex.currencies)} AS currency,
       count(*) AS refunds, sum(r.amount_cents) AS opsdeck_refunds_cents_total
FROM platform.refunds r JOIN platform.transactions t ON t.id = r.transaction_id GROUP BY 1, 2""",
            ("livemode", "currency"),
            (("refunds", ""), ("opsdeck_refunds_cents_total", "refunds")),
        ),
        PlainQuery(
            "chargebacks",
            """
SELECT t.livemode::text AS livemode, count(*) AS opsdeck_chargebacks_total
FROM platform.chargebacks c JOIN platform.transactions t ON t.id = c.transaction_id GROUP BY 1""",
            ("livemode",),
            (("opsdeck_chargebacks_total", "chargebacks"),),
        ),
        PlainQuery(
            "reconciliation",
            # Seed 001's query, less the transactions whose PSP report is not due yet.
            f"""
SELECT '24h' AS window,
       coalesce(SUM(abs(t.amount_cents - COALESCE(p.amount_cents, 0)))::float / nullif(SUM(t.amount_cents), 0), 0)
           AS opsdeck_payment_reconciliation_drift_ratio,
       count(*) FILTER (WHERE p.amount_cents IS DISTINCT FROM t.amount_cents)
           AS opsdeck_payment_reconciliation_mismatches
FROM platform.transactions t LEFT JOIN platform.psp_transactions p ON t.psp_id = p.psp_id
WHERE t.created_at >= now() - interval '24 hours'
  AND NOT (p.psp_id IS NULL AND t.created_at >= now() - {grace!r} * interval '1 second')""",
            ("window",),
            (
                ("opsdeck_payment_reconciliation_drift_ratio", "drift"),
                ("opsdeck_payment_reconciliation_mismatches", "mismatches"),
            ),
        ),
        PlainQuery(
            "api_requests",
            f"""
SELECT {_in("route", ex.api_routes)} AS route, {_in("method", ex.methods)} AS method,
       (status_code / 100)::text || 'xx' AS status_class, {mode} AS livemode,
       count(*) AS opsdeck_api_requests_total
FROM platform.api_logs GROUP BY 1, 2, 3, 4""",
            ("route", "method", "status_class", "livemode"),
            (("opsdeck_api_requests_total", "requests"),),
        ),
        PlainQuery(
            "api_durations",
            f"""
SELECT {_in("route", ex.api_routes)} AS route, sum(duration_ms) / 1000.0 AS api_duration_sum,
       {_buckets("duration_ms", api_bounds_ms, "api_duration")}
FROM platform.api_logs GROUP BY 1""",
            ("route",),
            (
                ("api_duration_sum", ""),
                *((f"api_duration__le_{i}", "") for i in range(len(api_bounds_ms) + 1)),
            ),
        ),
        PlainQuery(
            "calendar",
            f"""
SELECT {_in("provider", ex.calendar_providers)} AS provider, status AS result,
       count(*) AS opsdeck_calendar_syncs_total
FROM platform.calendar_syncs GROUP BY 1, 2""",
            ("provider", "result"),
            (("opsdeck_calendar_syncs_total", "calendar syncs"),),
        ),
        PlainQuery(
            "checks",
            f"""
SELECT {_in("service", ex.services)} AS service, CASE WHEN ok THEN 'ok' ELSE 'failed' END AS result,
       count(*) AS opsdeck_service_checks_total
FROM platform.service_checks GROUP BY 1, 2""",
            ("service", "result"),
            (("opsdeck_service_checks_total", "service checks"),),
        ),
        PlainQuery(
            "service_up",
            f"""
SELECT DISTINCT ON (service) service,
       (ok AND checked_at >= now() - interval '{stale} seconds')::int AS opsdeck_service_up,
       extract(epoch FROM checked_at)::float8 AS opsdeck_service_last_check_timestamp_seconds
FROM platform.service_checks ORDER BY service, checked_at DESC""",
            ("service",),
            (
                ("opsdeck_service_up", "service up"),
                ("opsdeck_service_last_check_timestamp_seconds", "latest service check"),
            ),
        ),
        PlainQuery(
            "tickets_open",
            """
SELECT count(*) AS opsdeck_support_tickets_open FROM platform.support_tickets WHERE status <> 'resolved'""",
            (),
            (("opsdeck_support_tickets_open", "open tickets"),),
        ),
        PlainQuery(
            "resolutions",
            f"""
SELECT coalesce(sum(extract(epoch FROM resolved_at - opened_at)), 0) AS resolution_sum,
       {_buckets("extract(epoch FROM resolved_at - opened_at)", tuple(float(b) for b in ex.resolution_buckets_seconds), "resolution")}
FROM platform.support_tickets WHERE status = 'resolved'""",
            (),
            (
                ("resolution_sum", ""),
                *(
                    (f"resolution__le_{i}", "")
                    for i in range(len(ex.resolution_buckets_seconds) + 1)
                ),
            ),
        ),
    ]


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _key(name: str, labels: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def as_contract(
    settings: Settings, query: PlainQuery, rows: list[tuple[Any, ...]]
) -> Iterator[tuple[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """Rows of a plain query as contract series (names and labels as opsdeck exposes them)."""
    api_bounds = (*settings.exporter.api_duration_buckets_seconds, math.inf)
    resolution_bounds = (
        *(float(b) for b in settings.exporter.resolution_buckets_seconds),
        math.inf,
    )
    for row in rows:
        labels = {k: str(v) for k, v in zip(query.labels, row, strict=False)}
        values = dict(zip((m for m, _ in query.metrics), row[len(query.labels) :], strict=True))
        for metric, value in values.items():
            yield from _rename(metric, labels, float(value or 0), api_bounds, resolution_bounds)


def _renamed(metric: str, labels: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """Contract series a plain-SQL column feeds (same value into each)."""
    mode = {"livemode": labels.get("livemode", "")}
    currency = labels.get("currency", "")
    table: dict[str, list[tuple[str, dict[str, str]]]] = {
        "attempts_succeeded": [
            (
                "opsdeck_payment_attempts_total",
                {"outcome": "succeeded", "failure_code": "none", **mode},
            ),
            ("opsdeck_payment_events_total", {"type": "charge.succeeded", **mode}),
        ],
        "volume_succeeded": [
            (
                "opsdeck_payment_volume_cents_total",
                {"outcome": "succeeded", "currency": currency, **mode},
            )
        ],
        "recovered": [("opsdeck_payment_retries_recovered_total", mode)],
        "attempts_failed": [
            (
                "opsdeck_payment_attempts_total",
                {"outcome": "failed", "failure_code": labels.get("failure_code", ""), **mode},
            ),
            ("opsdeck_payment_events_total", {"type": "charge.failed", **mode}),
        ],
        "volume_failed": [
            (
                "opsdeck_payment_volume_cents_total",
                {"outcome": "failed", "currency": currency, **mode},
            )
        ],
        "refunds": [("opsdeck_payment_events_total", {"type": "charge.refunded", **mode})],
        "opsdeck_chargebacks_total": [
            (metric, labels),
            ("opsdeck_payment_events_total", {"type": "charge.dispute.created", **mode}),
        ],
        "api_duration_sum": [("opsdeck_api_request_duration_seconds_sum", labels)],
        "resolution_sum": [("opsdeck_support_ticket_resolution_seconds_sum", labels)],
        "opsdeck_bookings_confirmed_total": [(metric, {})],
    }
    return table.get(metric, [(metric, labels)])


def _rename(
    metric: str,
    labels: dict[str, str],
    value: float,
    api_bounds: tuple[float, ...],
    resolution_bounds: tuple[float, ...],
) -> Iterator[tuple[tuple[str, tuple[tuple[str, str], ...]], float]]:
    histograms = {
        "api_duration__le_": ("opsdeck_api_request_duration_seconds", api_bounds, labels),
        "resolution__le_": ("opsdeck_support_ticket_resolution_seconds", resolution_bounds, {}),
    }
    for prefix, (name, bounds, base) in histograms.items():
        if metric.startswith(prefix):
            bound = bounds[int(metric.removeprefix(prefix))]
            yield _key(f"{name}_bucket", {**base, "le": _le(bound)}), value
            if math.isinf(bound):
                yield _key(f"{name}_count", base), value
            return
    for name, series_labels in _renamed(metric, labels):
        yield _key(name, series_labels), value


def plain_values(conn: psycopg.Connection[Any], settings: Settings) -> Series:
    out: Series = {}
    for query in queries(settings):
        for key, value in as_contract(settings, query, conn.execute(query.sql).fetchall()):
            out[key] = out.get(key, 0.0) + value
    return out


def query_exporter_config(settings: Settings, dsn: str, interval: int | None) -> dict[str, Any]:
    """query-exporter's configuration for the same queries (all values as gauges: the
    queries return totals, and query-exporter's counters would add them up)."""
    metrics: dict[str, Any] = {}
    config_queries: dict[str, Any] = {}
    for query in queries(settings):
        for metric, help_text in query.metrics:
            definition: dict[str, Any] = {"type": "gauge", "description": help_text or metric}
            if query.labels:
                definition["labels"] = list(query.labels)
            metrics[metric] = definition
        entry: dict[str, Any] = {
            "databases": ["platform"],
            "metrics": [m for m, _ in query.metrics],
            "sql": query.sql,
            "timeout": 600,
        }
        if interval is not None:
            entry["interval"] = interval
        config_queries[query.name] = entry
    return {"databases": {"platform": {"dsn": dsn}}, "metrics": metrics, "queries": config_queries}
