"""Every contract metric computed again with plain SQL over the raw rows: what the exporter
must equal. Written independently of exporters/queries on purpose."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import psycopg

from core.psp_webhooks import PROVIDERS
from core.settings import Settings

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def _label(value: Any, allowed: tuple[str, ...]) -> str:
    return str(value).strip() if str(value).strip() in allowed else "other"


def _mode(live: bool) -> str:
    return "true" if live else "false"


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def expected(conn: psycopg.Connection[Any], settings: Settings) -> Series:
    out: Series = defaultdict(float)
    ex = settings.exporter
    rows = conn.execute(
        "SELECT currency, amount_cents FROM platform.bookings WHERE confirmed_at IS NOT NULL"
    ).fetchall()
    out[_key("opsdeck_bookings_confirmed_total")] = len(rows)
    for currency, amount in rows:
        out[
            _key("opsdeck_booked_revenue_cents_total", currency=_label(currency, ex.currencies))
        ] += amount
    out[_key("opsdeck_site_sessions_total")] = _one(
        conn, "SELECT count(*) FROM platform.site_sessions"
    )
    out[_key("opsdeck_booking_conflicts_total")] = _one(conn, CONFLICTS)
    out[_key("opsdeck_bookings_unprocessed")] = _one(
        conn,
        "SELECT count(*) FROM platform.bookings WHERE status = 'pending' "
        "AND created_at < now() - %s * interval '1 second'",
        settings.thresholds.unprocessed_after_seconds,
    )
    _payments(conn, settings, out)
    _reconciliation(conn, settings.thresholds.reconciliation_grace_seconds, out)
    _activity(conn, settings, out)
    return dict(out)


CONFLICTS = """
SELECT count(*) FROM platform.bookings a
WHERE a.confirmed_at IS NOT NULL AND EXISTS (
    SELECT FROM platform.bookings b
    WHERE b.resource_id = a.resource_id AND b.id <> a.id AND b.confirmed_at IS NOT NULL
      AND (b.confirmed_at < a.confirmed_at OR (b.confirmed_at = a.confirmed_at AND b.id < a.id))
      AND b.start_at < a.end_at AND a.start_at < b.end_at
      AND (b.cancelled_at IS NULL OR b.cancelled_at > a.confirmed_at))
"""


def _one(conn: psycopg.Connection[Any], sql: str, *params: Any) -> float:
    row = conn.execute(sql, params or None).fetchone()
    assert row is not None
    return float(row[0] or 0)


def _payments(conn: psycopg.Connection[Any], settings: Settings, out: Series) -> None:
    ex = settings.exporter
    for live, currency, code, status, captured, attempt, amount, psp in conn.execute(
        "SELECT livemode, currency, failure_code, status, captured_at IS NOT NULL, attempt, "
        "amount_cents, psp FROM platform.transactions"
    ):
        mode, cur = _mode(live), _label(currency, ex.currencies)
        by_psp = {"psp": _label(psp, PROVIDERS), "livemode": mode}
        if attempt > 1:
            out[_key("opsdeck_payment_retries_total", livemode=mode)] += 1
        if captured:
            out[
                _key(
                    "opsdeck_payment_attempts_total",
                    outcome="succeeded",
                    failure_code="none",
                    livemode=mode,
                )
            ] += 1
            out[
                _key(
                    "opsdeck_payment_volume_cents_total",
                    outcome="succeeded",
                    currency=cur,
                    livemode=mode,
                )
            ] += amount
            out[_key("opsdeck_payment_events_total", type="charge.succeeded", livemode=mode)] += 1
            out[_key("opsdeck_psp_payment_attempts_total", outcome="succeeded", **by_psp)] += 1
            if attempt > 1:
                out[_key("opsdeck_payment_retries_recovered_total", livemode=mode)] += 1
        if status == "failed":
            label = _label(code, ex.failure_codes)
            out[
                _key(
                    "opsdeck_payment_attempts_total",
                    outcome="failed",
                    failure_code=label,
                    livemode=mode,
                )
            ] += 1
            out[
                _key(
                    "opsdeck_payment_volume_cents_total",
                    outcome="failed",
                    currency=cur,
                    livemode=mode,
                )
            ] += amount
            out[_key("opsdeck_payment_events_total", type="charge.failed", livemode=mode)] += 1
            out[_key("opsdeck_psp_payment_attempts_total", outcome="failed", **by_psp)] += 1
    for live, currency, amount in conn.execute(
        "SELECT t.livemode, t.currency, r.amount_cents FROM platform.refunds r "
        "JOIN platform.transactions t ON t.id = r.transaction_id"
    ):
        mode = _mode(live)
        out[
            _key(
                "opsdeck_refunds_cents_total",
                currency=_label(currency, ex.currencies),
                livemode=mode,
            )
        ] += amount
        out[_key("opsdeck_payment_events_total", type="charge.refunded", livemode=mode)] += 1
    for (live,) in conn.execute(
        "SELECT t.livemode FROM platform.chargebacks c JOIN platform.transactions t ON t.id = c.transaction_id"
    ):
        out[_key("opsdeck_chargebacks_total", livemode=_mode(live))] += 1
        out[
            _key(
                "opsdeck_payment_events_total", type="charge.dispute.created", livemode=_mode(live)
            )
        ] += 1


def _reconciliation(conn: psycopg.Connection[Any], grace_seconds: float, out: Series) -> None:
    # Seed 001's query, as written there (with the missing-PSP count beside it), leaving
    # out the transactions whose PSP report is not due yet.
    delta, internal, mismatches = conn.execute(
        """
        SELECT SUM(abs(t.amount_cents - COALESCE(p.amount_cents, 0))), SUM(t.amount_cents),
               count(*) FILTER (WHERE p.amount_cents IS DISTINCT FROM t.amount_cents)
        FROM platform.transactions t LEFT JOIN platform.psp_transactions p ON t.psp_id = p.psp_id
        WHERE t.created_at >= now() - interval '24 hours'
          AND NOT (p.psp_id IS NULL AND t.created_at >= now() - %s * interval '1 second')
        """,
        (grace_seconds,),
    ).fetchone() or (0, 0, 0)
    out[_key("opsdeck_payment_reconciliation_drift_ratio", window="24h")] = float(
        delta or 0
    ) / float(internal or 1)
    out[_key("opsdeck_payment_reconciliation_mismatches", window="24h")] = float(mismatches or 0)


def api_requests(conn: psycopg.Connection[Any], settings: Settings, where: str = "true") -> Series:
    """API request counters and duration histograms over the api_logs rows matching ``where``."""
    ex = settings.exporter
    out: Series = defaultdict(float)
    bounds = (*ex.api_duration_buckets_seconds, math.inf)
    for route, method, status, live, duration in conn.execute(
        f"SELECT route, method, status_code, livemode, duration_ms FROM platform.api_logs WHERE {where}"
    ):
        r, m = _label(route, ex.api_routes), _label(method, ex.methods)
        out[
            _key(
                "opsdeck_api_requests_total",
                route=r,
                method=m,
                status_class=f"{status // 100}xx",
                livemode=_mode(live),
            )
        ] += 1
        seconds = duration / 1000
        for bound in bounds:
            if seconds <= bound:
                out[
                    _key("opsdeck_api_request_duration_seconds_bucket", route=r, le=_le(bound))
                ] += 1
        out[_key("opsdeck_api_request_duration_seconds_sum", route=r)] += seconds
        out[_key("opsdeck_api_request_duration_seconds_count", route=r)] += 1
    return out


def _activity(conn: psycopg.Connection[Any], settings: Settings, out: Series) -> None:
    ex = settings.exporter
    for key, value in api_requests(conn, settings).items():
        out[key] += value
    for provider, status in conn.execute("SELECT provider, status FROM platform.calendar_syncs"):
        out[
            _key(
                "opsdeck_calendar_syncs_total",
                provider=_label(provider, ex.calendar_providers),
                result=status,
            )
        ] += 1
    for service, ok in conn.execute("SELECT service, ok FROM platform.service_checks"):
        out[
            _key("opsdeck_service_checks_total", service=service, result="ok" if ok else "failed")
        ] += 1
    _service_health(conn, settings, out)
    out[_key("opsdeck_support_tickets_open")] = _one(
        conn, "SELECT count(*) FROM platform.support_tickets WHERE status <> 'resolved'"
    )
    bounds = (*ex.resolution_buckets_seconds, math.inf)
    for (seconds,) in conn.execute(
        "SELECT extract(epoch FROM resolved_at - opened_at)::float8 FROM platform.support_tickets "
        "WHERE status = 'resolved'"
    ):
        for bound in bounds:
            if seconds <= bound:
                out[_key("opsdeck_support_ticket_resolution_seconds_bucket", le=_le(bound))] += 1
        out[_key("opsdeck_support_ticket_resolution_seconds_sum")] += seconds
        out[_key("opsdeck_support_ticket_resolution_seconds_count")] += 1


def _service_health(conn: psycopg.Connection[Any], settings: Settings, out: Series) -> None:
    """Per service: its latest check's time, and up only while that check passed and is
    younger than the staleness threshold (a checker that went quiet reads down)."""
    for service, ok, checked_at, age in conn.execute(
        "SELECT DISTINCT ON (service) service, ok, extract(epoch FROM checked_at)::float8, "
        "extract(epoch FROM now() - checked_at)::float8 "
        "FROM platform.service_checks ORDER BY service, checked_at DESC"
    ):
        fresh = age <= settings.thresholds.service_check_stale_seconds
        out[_key("opsdeck_service_up", service=service)] = 1.0 if ok and fresh else 0.0
        out[_key("opsdeck_service_last_check_timestamp_seconds", service=service)] = checked_at
