"""Two API replicas run the escalation engine: one passes at a time. When the leader's lock
session dies, the other takes over and the old one stops passing: it re-checks its lock,
it does not keep paging beside the new leader."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import httpx
import psycopg
import pytest

from api.incidents import context, escalation, escalation_loop, store
from api.incidents.alertmanager import Notification
from api.incidents.queries.escalation import ENGINE_LEADER
from core.leadership import NotLeader
from tests.api.conftest import Harness
from tests.incidents.conftest import alert, faked_settings, notification
from tests.incidents.fakes import Fake

pytestmark = pytest.mark.anyio
# Nothing is due this long ago: a pass only reads the clock and finds no work.
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
TICK = 0.1


@dataclass
class Passes:
    """The engine reads its clock once per pass: counting the reads counts the passes."""

    count: int = 0
    at: list[float] = field(default_factory=list)

    def __call__(self) -> datetime:
        self.count += 1
        self.at.append(time.monotonic())
        return LONG_AGO


async def _until(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.02)


def _lock_holders(api: Harness, key: int) -> list[int]:
    rows = api.sql(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
        "AND classid::bigint = %(key)s >> 32 AND objid::bigint = %(key)s & 4294967295",
        {"key": key},
    )
    return [int(r[0]) for r in rows]


async def _quiet(passes: Passes, seconds: float) -> bool:
    before = passes.count
    await anyio.sleep(seconds)
    return passes.count == before


async def test_a_replica_takes_over_when_the_leaders_session_dies(
    api: Harness, fake: tuple[Fake, httpx.AsyncClient]
) -> None:
    server, client = fake
    # The first leader checks its lock every second, the second replica every 0.25 s: the
    # second wins the lock once the first one's session is gone.
    slow = faked_settings(server, engine_enabled=True, tick_seconds=TICK, engine_check_seconds=1.0)
    quick = slow.model_copy(update={"engine_check_seconds": 0.25})
    first, second = Passes(), Passes()
    old = context.build(slow, client, clock=first)
    new = context.build(quick, client, clock=second)
    key = slow.engine_lock_key
    before = _epoch(api)
    async with escalation_loop.running(api.runtime, old):
        await _until("the first leader's passes", lambda: first.count >= 3)
        async with escalation_loop.running(api.runtime, new):
            assert await _quiet(second, 0.5), "a standby passed beside the leader"
            (holder,) = _lock_holders(api, key)
            api.sql("SELECT pg_terminate_backend(%s)", (holder,))
            killed = time.monotonic()
            await _until("the second replica's passes", lambda: second.count >= 3)
            # The old leader learns at its next check (1 s) that it lost; from then on
            # only the new leader passes.
            await anyio.sleep(max(0.0, killed + 1.5 - time.monotonic()))
            assert await _quiet(first, 1.0), "the old leader kept passing beside the new one"
            assert not await _quiet(second, 0.5)
    # Elected at least twice: the first leader, then the second. A replica that cannot
    # confirm its lock within the lock's validity (a starved thread on a loaded machine)
    # steps down and is elected again, which is an election more, never two leaders.
    assert _epoch(api) >= before + 2


def _epoch(api: Harness) -> int:
    rows = api.sql("SELECT epoch FROM ops.leaders WHERE name = %s", (ENGINE_LEADER,))
    return int(rows[0][0]) if rows else 0


async def test_a_pass_under_a_superseded_epoch_fires_no_step(
    api: Harness, fake: tuple[Fake, httpx.AsyncClient]
) -> None:
    """Firing steps is fenced: a pass of a leader that lost its lock fires nothing once
    another was elected; the current leader's pass fires the step."""
    server, client = fake
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    incidents = context.build(faked_settings(server), client, clock=lambda: now)
    name = "FencedEscalation"
    note = Notification.model_validate(notification(name, alert(name, "fenced01")))
    async with await psycopg.AsyncConnection.connect(api.db_url, autocommit=True) as conn:
        applied = await store.apply_notification(
            conn, note, now, incidents.oncall, incidents.settings
        )
        assert applied.incident is not None
        epoch = _elected(api)
        with pytest.raises(NotLeader):
            await escalation_loop.tick(api.runtime, incidents, epoch - 1)
        assert _fired(await escalation.steps(conn, applied.incident)) == []
        await escalation_loop.tick(api.runtime, incidents, epoch)
        assert _fired(await escalation.steps(conn, applied.incident)) == [0]


def _fired(steps: list[tuple[object, ...]]) -> list[object]:
    return [level for level, _round, _due, fired_at, _cancelled in steps if fired_at is not None]


def _elected(api: Harness) -> int:
    """A new epoch of the engine's lock, as an election makes it."""
    rows = api.sql(
        "INSERT INTO ops.leaders (name, epoch, holder) VALUES (%s, 1, 'test') "
        "ON CONFLICT (name) DO UPDATE SET epoch = ops.leaders.epoch + 1 RETURNING epoch",
        (ENGINE_LEADER,),
    )
    return int(rows[0][0])
