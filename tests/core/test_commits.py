"""The horizon's ceiling, on a real server: it stays put while nothing but opsdeck's own
registered writes end, and moves past every other transaction's commit, whether that
transaction started after the last reading or was already running at it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import psycopg
import pytest

from core.horizon import Horizon
from core.settings import ExporterSettings

MARGIN = 0.25
WRITER = "commits-test-writer"


@pytest.fixture
def horizon(db_url: str) -> Iterator[Horizon]:
    # The writer is left out of the horizon, which then passes its open transaction: a
    # reading after a moment is one whose horizon passed it.
    settings = ExporterSettings(
        fold_interval_seconds=0.05,
        horizon_margin_seconds=MARGIN,
        horizon_ignore_applications=(WRITER,),
    )
    watched = Horizon(db_url, settings, own_writes_shared=True)
    stop = threading.Event()
    thread = threading.Thread(target=watched.run, args=(stop,))
    thread.start()
    yield watched
    stop.set()
    thread.join()


def _now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    now: datetime = row[0]
    return now


def _read_after(horizon: Horizon, conn: psycopg.Connection) -> datetime:
    """The ceiling of a reading that started after this moment."""
    after = _now(conn) - timedelta(seconds=MARGIN)
    deadline = time.monotonic() + 10
    while (horizon.value is None or horizon.value <= after) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert horizon.value is not None, "no reading"
    assert horizon.value > after, "no reading since"
    ceiling = horizon.ceiling
    assert ceiling is not None
    return ceiling


def _xid(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
    assert row is not None
    return int(row[0])


def test_the_ceiling_moves_past_others_commits_only(db_url: str, horizon: Horizon) -> None:
    with (
        psycopg.connect(db_url, autocommit=True) as clock,
        psycopg.connect(db_url, application_name=WRITER) as writer,
    ):
        first = _read_after(horizon, clock)
        assert _read_after(horizon, clock) == first, "nothing committed, yet it moved"

        horizon.own(_xid(writer))  # an own write, registered before its commit
        writer.commit()
        assert _read_after(horizon, clock) == first, "an own write moved it"

        _xid(writer)  # another's write, running across readings
        assert _read_after(horizon, clock) == first, "a running transaction moved it"
        writer.commit()
        committed = _now(clock)
        moved = _read_after(horizon, clock)
        assert moved > committed, "a transaction running at a reading committed unseen"

        writer.execute("INSERT INTO platform.site_sessions (started_at) VALUES (now())")
        writer.commit()
        committed = _now(clock)
        again = _read_after(horizon, clock)
        assert again > committed, "a transaction between two readings committed unseen"
