"""The demo's traffic line: the first one comes as soon as the platform has a transaction
from the last minute, not a whole status period after the demo is up; before that, and
between lines, nothing is printed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from core.settings import Settings
from opsdeck.demo import STATUS_EVERY_SECONDS, Demo, DemoPlan

CUSTOMER = "INSERT INTO platform.customers (id, name, email) VALUES (1, 'Ada', 'ada@example.com')"
INSERT = (
    "INSERT INTO platform.transactions (customer_id, amount_cents, currency, status, psp, "
    "payment_intent_id, livemode, created_at) "
    "VALUES (1, 100, 'EUR', 'captured', 'stripe', 'pi_status_line', true, now())"
)


@contextmanager
def watching(url: str, data_dir: Path) -> Iterator[list[str]]:
    """The demo's watch loop over the platform at ``url``, and the lines it prints."""
    lines: list[str] = []
    plan = DemoPlan(Settings(), data_dir, rate=1.0, backfill_days=0.0, urls={"platform": url})
    stop = threading.Event()
    watcher = threading.Thread(target=Demo(plan, lines.append)._watch, args=(stop,))
    watcher.start()
    try:
        yield lines
    finally:
        stop.set()
        watcher.join()


def test_the_first_traffic_line_comes_with_the_first_transaction(
    db_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(CUSTOMER)
    with watching(db_url, tmp_path) as lines:
        time.sleep(1.5)
        assert lines == []  # no traffic yet: no line of zeros either
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(INSERT)
        inserted = time.monotonic()
        while not lines and time.monotonic() - inserted < STATUS_EVERY_SECONDS:
            time.sleep(0.1)
        waited = time.monotonic() - inserted
        time.sleep(1.5)
    assert lines[0].startswith("traffic: 1 transactions"), lines
    assert waited < STATUS_EVERY_SECONDS / 2  # at once, not a status period later
    assert len(lines) == 1  # then one line a period
