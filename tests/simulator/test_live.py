"""Live traffic: out-of-order commits, every status transition, late and imperfect PSP feed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from simulator.live import LiveOptions, LiveSimulator


@dataclass
class LiveRun:
    url: str
    out_of_order: list[tuple[int, int]]
    writer_connections: int


def _watch_visibility(url: str, stop: threading.Event, found: list[tuple[int, int]]) -> None:
    """Poll visible transaction ids; record any id that shows up below one already seen."""
    seen: set[int] = set()
    highest = 0
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            query = "SELECT id FROM platform.transactions WHERE id > %s"
            ids = [int(r[0]) for r in conn.execute(query, (highest - 5000,))]
            found.extend((i, highest) for i in ids if i not in seen and i < highest)
            seen.update(ids)
            highest = max([highest, *ids])
            time.sleep(0.002)


@pytest.fixture(scope="module")
def live_run(request: pytest.FixtureRequest) -> Iterator[LiveRun]:
    admin_url = request.getfixturevalue("admin_url")
    template = request.getfixturevalue("template_db")
    from tests.conftest import create_database, drop_database, with_database

    name = create_database(admin_url, template)
    url = with_database(admin_url, name)
    options = LiveOptions(
        rate=300,
        writers=8,
        seed=5,
        seasonal=False,
        speedup=60.0,
        psp_missing_share=0.05,
        psp_different_share=0.05,
        psp_delay_seconds=2.0,
    )
    simulator = LiveSimulator(url, url, options)
    stop = threading.Event()
    found: list[tuple[int, int]] = []
    watcher = threading.Thread(target=_watch_visibility, args=(url, stop, found))
    connections: list[int] = []

    def count_writers() -> None:
        time.sleep(3)
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'opsdeck-simulator' "
                "AND datname = current_database()"
            ).fetchone()
            connections.append(int(row[0]) if row else 0)

    counter = threading.Thread(target=count_writers)
    watcher.start()
    counter.start()
    threading.Timer(14, stop.set).start()
    simulator.run(stop, lambda counts, elapsed: None)
    watcher.join()
    counter.join()
    yield LiveRun(url, found, connections[0])
    drop_database(admin_url, name)


def _one(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_eight_concurrent_writers(live_run: LiveRun) -> None:
    assert live_run.writer_connections >= 8


def test_ids_commit_out_of_order(live_run: LiveRun) -> None:
    """A lower id became visible after a higher one had been seen: an ``id > watermark``
    reader would have skipped it."""
    assert live_run.out_of_order, "no out-of-order commit observed"
    late, already_seen = live_run.out_of_order[0]
    assert late < already_seen


def test_booking_pending_confirmed_cancelled(live_run: LiveRun) -> None:
    assert (
        _one(
            live_run.url,
            "SELECT count(*) FROM platform.bookings WHERE status = 'confirmed' "
            "AND confirmed_at > created_at",
        )
        > 0
    )
    assert (
        _one(
            live_run.url,
            "SELECT count(*) FROM platform.bookings WHERE status = 'cancelled' "
            "AND created_at < confirmed_at AND confirmed_at < cancelled_at",
        )
        > 0
    )
    assert _one(live_run.url, "SELECT count(*) FROM platform.bookings WHERE status = 'failed'") > 0


def test_payment_authorized_captured_refunded(live_run: LiveRun) -> None:
    assert (
        _one(
            live_run.url,
            "SELECT count(*) FROM platform.transactions WHERE status = 'captured' "
            "AND captured_at > created_at",
        )
        > 0
    )
    assert (
        _one(
            live_run.url,
            "SELECT count(*) FROM platform.transactions t JOIN platform.refunds r "
            "ON r.transaction_id = t.id WHERE t.status IN ('refunded', 'partially_refunded') "
            "AND r.created_at > t.captured_at",
        )
        > 0
    )


def test_failed_attempts_retried_until_success(live_run: LiveRun) -> None:
    recovered = _one(
        live_run.url,
        """
        SELECT count(*) FROM platform.transactions ok JOIN platform.transactions failed
          ON failed.payment_intent_id = ok.payment_intent_id AND failed.attempt < ok.attempt
        WHERE ok.captured_at IS NOT NULL AND failed.status = 'failed' AND failed.failed_at < ok.created_at
    """,
    )
    assert recovered > 0


def test_psp_feed_is_late_missing_or_different(live_run: LiveRun) -> None:
    url = live_run.url
    assert (
        _one(
            url,
            "SELECT count(*) FROM platform.psp_transactions p JOIN platform.transactions t "
            "USING (psp_id) WHERE p.received_at > t.created_at + interval '100 milliseconds'",
        )
        > 0
    )
    assert (
        _one(
            url,
            "SELECT count(*) FROM platform.transactions t WHERE t.created_at < now() - interval '10 seconds' "
            "AND NOT EXISTS (SELECT FROM platform.psp_transactions p WHERE p.psp_id = t.psp_id)",
        )
        > 0
    )
    assert (
        _one(
            url,
            "SELECT count(*) FROM platform.psp_transactions p JOIN platform.transactions t "
            "USING (psp_id) WHERE p.amount_cents <> t.amount_cents",
        )
        > 0
    )


def test_activity_tables_and_test_mode(live_run: LiveRun) -> None:
    url = live_run.url
    for table in (
        "api_logs",
        "site_sessions",
        "calendar_syncs",
        "service_checks",
        "support_tickets",
    ):
        assert _one(url, f"SELECT count(*) FROM platform.{table}") > 0, table
    assert (
        _one(
            url,
            "SELECT count(*) FROM platform.support_tickets WHERE status = 'resolved' "
            "AND resolved_at > opened_at",
        )
        > 0
    )
    assert _one(url, "SELECT count(*) FROM platform.support_tickets WHERE status = 'pending'") > 0
    for table in ("transactions", "api_logs"):
        assert _one(url, f"SELECT count(*) FROM platform.{table} WHERE livemode") > 0
        assert _one(url, f"SELECT count(*) FROM platform.{table} WHERE NOT livemode") > 0


def test_live_bookings_respect_availability(live_run: LiveRun) -> None:
    """The platform checks availability: live traffic alone stays under the conflict-rate
    alert's threshold (double bookings come from the injection)."""
    from core.settings import Thresholds

    confirmed = _one(
        live_run.url, "SELECT count(*) FROM platform.bookings WHERE confirmed_at IS NOT NULL"
    )
    conflicts = _one(
        live_run.url,
        """
        SELECT count(*) FROM platform.bookings a WHERE a.confirmed_at IS NOT NULL AND EXISTS (
            SELECT FROM platform.bookings b WHERE b.resource_id = a.resource_id AND b.id <> a.id
              AND b.confirmed_at IS NOT NULL AND (b.confirmed_at, b.id) < (a.confirmed_at, a.id)
              AND b.start_at < a.end_at AND a.start_at < b.end_at
              AND (b.cancelled_at IS NULL OR b.cancelled_at > a.confirmed_at))
    """,
    )
    assert confirmed > 100
    assert conflicts / confirmed <= Thresholds().booking_conflict_rate
