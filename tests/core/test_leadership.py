"""The leader lock on a real PostgreSQL: one of two contenders leads; when the leader's
session dies the other takes over within the check interval and the old one knows it
lost; the fence refuses writes of an old epoch and makes an election wait for the fenced
writes in flight. And the lock is written once: only core/queries/leadership.py asks
PostgreSQL for a session advisory lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest

from core.leadership import Fence, Leadership, NotLeader
from tests.conftest import REPO

LOCK_KEY = 7_220_269_001
FENCE_KEY = 7_220_269_002
NAME = "test-leader"
CHECK_SECONDS = 0.2
ROOMS = ("core", "exporters", "gateway", "api", "simulator", "opsdeck")
THE_LOCK = "pg_try_advisory_lock"


def contender(db_url: str, check_seconds: float = CHECK_SECONDS) -> Leadership:
    return Leadership(
        db_url,
        name=NAME,
        lock_key=LOCK_KEY,
        fence_key=FENCE_KEY,
        what="the test",
        application_name="opsdeck-test-leader",
        check_seconds=check_seconds,
    )


@contextmanager
def contending(*leaders: Leadership) -> Iterator[list[threading.Event]]:
    """Each leader contends on its own thread; its stop event ends it (and lets go)."""
    stops = [threading.Event() for _ in leaders]
    threads = [
        threading.Thread(target=leader.run, args=(stop,), name=f"contender-{i}")
        for i, (leader, stop) in enumerate(zip(leaders, stops, strict=True))
    ]
    for thread in threads:
        thread.start()
    try:
        yield stops
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(timeout=30)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 10.0) -> float:
    """Seconds it took ``check`` to hold."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.02)
    return time.monotonic() - started


def sole_leader(leaders: tuple[Leadership, Leadership]) -> tuple[Leadership, Leadership]:
    wait_for("leader", lambda: any(leader.leading for leader in leaders))
    first, second = leaders
    return (first, second) if first.leading else (second, first)


def lock_holder(db_url: str) -> int:
    """The backend holding the session lock, as pg_locks shows a bigint key."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 1 AND classid::bigint = %(key)s >> 32 "
            "AND objid::bigint = %(key)s & 4294967295",
            {"key": LOCK_KEY},
        ).fetchall()
    assert len(rows) == 1, rows
    return int(rows[0][0])


def terminate(db_url: str, pid: int) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    assert row == (True,)


def test_one_of_two_contenders_leads(db_url: str) -> None:
    leaders = (contender(db_url), contender(db_url))
    with contending(*leaders):
        leader, standby = sole_leader(leaders)
        deadline = time.monotonic() + 5 * CHECK_SECONDS
        while time.monotonic() < deadline:  # several checks of both, never two leaders
            assert leader.epoch == 1
            assert standby.epoch is None
            time.sleep(0.02)


def test_the_standby_takes_over_when_the_leaders_session_dies(db_url: str) -> None:
    # The old leader checks only every second: the standby, checking every 0.2 s, must be
    # the one that wins the lock, and the old leader must notice all the same.
    old = contender(db_url, check_seconds=1.0)
    standby = contender(db_url)
    with contending(old):
        wait_for("first election", lambda: old.epoch == 1)
        with contending(standby):
            time.sleep(3 * CHECK_SECONDS)
            assert standby.epoch is None
            terminate(db_url, lock_holder(db_url))
            took = wait_for("takeover", lambda: standby.epoch == 2)
            assert took < 1.0 + 2 * CHECK_SECONDS  # the old check and a standby check
            wait_for("the old leader noticing", lambda: old.epoch is None, timeout=2.5)
            time.sleep(1.5)  # the old leader contends again, and loses
            assert old.epoch is None
            assert standby.epoch == 2


def test_stopping_the_leader_hands_the_lock_over(db_url: str) -> None:
    leaders = (contender(db_url), contender(db_url))
    with contending(*leaders) as stops:
        leader, standby = sole_leader(leaders)
        stops[leaders.index(leader)].set()
        wait_for("takeover", lambda: standby.epoch == 2, timeout=3.0)
        assert leader.epoch is None


def test_a_leader_that_cannot_confirm_its_lock_stops_leading(db_url: str) -> None:
    """A check hanging on a dead network never fails: leadership lapses on its own once
    no check confirmed it for 2 * check_seconds + statement_timeout_seconds."""
    leader = Leadership(
        db_url,
        name=NAME,
        lock_key=LOCK_KEY,
        what="the test",
        application_name="opsdeck-test-leader",
        check_seconds=0.1,
        statement_timeout_seconds=0.1,
    )
    leader._step()  # one election, then no check at all: as if the next one hung
    try:
        assert leader.epoch == 1
        time.sleep(0.4)
        assert leader.epoch is None
    finally:
        leader._lose(None)


def test_the_fence_refuses_a_write_of_an_old_epoch(db_url: str) -> None:
    fence = Fence(NAME, FENCE_KEY)
    leaders = (contender(db_url), contender(db_url))
    with contending(*leaders), psycopg.connect(db_url) as writer:
        leader, standby = sole_leader(leaders)
        old_epoch = leader.epoch
        assert old_epoch == 1
        fence.check(writer, old_epoch)
        writer.execute("CREATE TABLE ops.fenced (epoch bigint)")
        writer.execute("INSERT INTO ops.fenced VALUES (%s)", (old_epoch,))
        writer.commit()

        terminate(db_url, lock_holder(db_url))
        wait_for("takeover", lambda: (standby.epoch or leader.epoch or 0) == 2)
        with pytest.raises(NotLeader, match="epoch 1 was superseded by 2"):
            fence.check(writer, old_epoch)
        writer.rollback()
        fence.check(writer, 2)
        writer.rollback()
        assert writer.execute("SELECT epoch FROM ops.fenced").fetchall() == [(1,)]


def test_an_election_waits_for_the_fenced_writes_in_flight(db_url: str) -> None:
    leaders = (contender(db_url), contender(db_url))
    with contending(*leaders), psycopg.connect(db_url) as writer:
        leader, standby = sole_leader(leaders)
        assert leader.epoch == 1
        Fence(NAME, FENCE_KEY).check(writer, 1)  # a write under epoch 1, not committed yet
        terminate(db_url, lock_holder(db_url))
        time.sleep(1.0)  # the standby has won the lock and waits to be elected
        assert [leader.epoch, standby.epoch] == [None, None]
        writer.commit()
        wait_for("election after the write", lambda: (standby.epoch or leader.epoch) == 2)


def test_a_fence_outside_a_transaction_is_refused(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn, pytest.raises(ValueError, match="trans"):
        Fence(NAME, FENCE_KEY).check(conn, 1)


def test_session_advisory_locks_are_taken_in_one_place_only() -> None:
    """The leader lock is written once, in core: a second hand-made one fails here."""
    allowed = REPO / "core" / "queries" / "leadership.py"
    found = [
        path.relative_to(REPO)
        for room in ROOMS
        for path in sorted((REPO / room).rglob("*.py"))
        if THE_LOCK in path.read_text(encoding="utf-8") and path != allowed
    ]
    assert found == [], f"{THE_LOCK} outside core/queries/leadership.py: use core.leadership"
    assert THE_LOCK in allowed.read_text(encoding="utf-8")
    assert all((REPO / room).is_dir() for room in ROOMS)  # the scan misses no room
