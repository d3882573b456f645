"""The chargebacks, stuck bookings and calendar sync failure pages read a page's worth of
rows whatever the table's size: over a few hundred thousand rows, no page scans a table and
each touches a small, fixed number of buffers (a full scan touches thousands)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from api.drilldowns.calendar_syncs import CALENDAR_SYNC_FAILURES
from api.drilldowns.chargebacks import CHARGEBACKS
from api.drilldowns.operations import CALENDAR_SYNCS
from api.drilldowns.spec import ListView
from api.drilldowns.stuck_bookings import STUCK_BOOKINGS
from api.queries.listing import PageRequest
from tests.conftest import scratch_database

ROWS = 300_000
CALENDARS = 2_000
PAGE = 50
# A page's worth: each row costs a few index probes (payment, customer); the smallest table
# below spans over 2,000 pages.
BUFFER_BUDGET = 1_000
BIG_TABLES = {"chargebacks", "transactions", "customers", "bookings", "calendar_syncs"}

LOAD = f"""
INSERT INTO platform.locations (id, name) VALUES (1, 'Lagos');
INSERT INTO platform.resources (id, name, location_id) VALUES (1, 'Room 1', 1);
INSERT INTO platform.customers (id, name, email)
    SELECT i, 'Customer ' || i, 'c' || i || '@example.com' FROM generate_series(1, 10000) i;
INSERT INTO platform.transactions (id, customer_id, amount_cents, currency, status, psp,
    psp_id, payment_intent_id, livemode, created_at, captured_at)
    SELECT i, 1 + i % 10000, 1000 + i % 5000, 'NGN', 'captured',
        CASE WHEN i % 5 = 0 THEN 'paystack' ELSE 'stripe' END, 'ch_' || i, 'pi_' || i,
        i % 20 <> 0, now() - (i || ' seconds')::interval * 8, now() - (i || ' seconds')::interval * 8
    FROM generate_series(1, {ROWS}) i;
-- Every payment disputed (the worst case for the join), in seed 003's mix of statuses.
INSERT INTO platform.chargebacks (transaction_id, amount_cents, reason, status, created_at)
    SELECT i, 100, 'fraudulent',
        (ARRAY['needs_response', 'needs_response', 'under_review', 'won', 'lost'])[1 + i % 5],
        now() - (i || ' seconds')::interval * 8
    FROM generate_series(1, {ROWS}) i;
-- Bookings: one in a thousand left pending.
INSERT INTO platform.bookings (resource_id, customer_id, location_id, start_at, end_at, status,
    amount_cents, currency, created_at)
    SELECT 1, 1 + i % 10000, 1, now() + (i || ' minutes')::interval,
        now() + (i || ' minutes')::interval + interval '30 minutes',
        CASE WHEN i % 1000 = 0 THEN 'pending' ELSE 'confirmed' END, 1000, 'NGN',
        now() - (i || ' seconds')::interval * 8
    FROM generate_series(1, {ROWS}) i;
-- Calendar syncs: 5 % fail, spread over {CALENDARS} calendars and 28 days.
INSERT INTO platform.calendar_syncs (provider, calendar_id, resource_id, started_at,
    finished_at, status, error)
    SELECT (ARRAY['google', 'outlook', 'ical'])[1 + i % 3], 'cal_' || i % {CALENDARS}, 1,
        now() - (i || ' seconds')::interval * 8, now() - (i || ' seconds')::interval * 8,
        CASE WHEN i % 20 = 7 THEN 'failed' ELSE 'ok' END,
        CASE WHEN i % 20 = 7 THEN 'timeout after 30s' END
    FROM generate_series(1, {ROWS}) i;
ANALYZE;
"""


@pytest.fixture(scope="module")
def big_db(admin_url: str, template_db: str) -> Iterator[str]:
    with scratch_database(admin_url, template_db) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(LOAD)
        yield url


def _request(view: ListView, days: float, **filters: Any) -> PageRequest:
    now = datetime.now(UTC)
    return PageRequest(
        filters={"time_from": now - timedelta(days=days), "time_to": now, **filters},
        sort=view.sorts[0],
        descending=True,
        after=None,
        limit=PAGE,
        scan_budget=5_000,
    )


def _plan(url: str, view: ListView, request: PageRequest) -> dict[str, Any]:
    query, params = view.query(request, export=False)
    with psycopg.connect(url) as conn, psycopg.ClientCursor(conn) as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}", params)
        row = cursor.fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    top: dict[str, Any] = plan[0]["Plan"]
    return top


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


CASES: dict[str, tuple[ListView, float, dict[str, Any]]] = {
    "chargebacks, live, 24 h": (CHARGEBACKS, 1, {"livemode": True}),
    "chargebacks lost, 30 d": (CHARGEBACKS, 30, {"status": ["lost"], "livemode": True}),
    "chargebacks of a customer": (CHARGEBACKS, 30, {"customer_id": 42, "livemode": True}),
    "chargebacks of a payment": (CHARGEBACKS, 30, {"transaction_id": 4242, "livemode": True}),
    "stuck bookings, all time": (STUCK_BOOKINGS, 20_000, {"stuck_after": 600.0}),
    "a calendar's failed syncs, 30 d": (
        CALENDAR_SYNCS,
        30,
        {"result": "failed", "calendar_id": "cal_7"},
    ),
    "failures per calendar, 1 h": (CALENDAR_SYNC_FAILURES, 1 / 24, {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_page_reads_a_page_worth_of_rows(big_db: str, case: str) -> None:
    view, days, filters = CASES[case]
    top = _plan(big_db, view, _request(view, days, **filters))
    scans = [
        n for n in _nodes(top) if n["Node Type"] == "Seq Scan" and n["Relation Name"] in BIG_TABLES
    ]
    assert scans == [], [n.get("Relation Name") for n in scans]
    touched = top["Shared Hit Blocks"] + top["Shared Read Blocks"]
    assert touched < BUFFER_BUDGET, touched
