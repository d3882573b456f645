"""One tail per list, whoever watches: the statements a tail runs for a window are the same
for one viewer as for three hundred with different filters (counted, step by step, not
timed), every viewer still gets exactly its rows, and a list no one follows costs nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from api.live.feeds import PAYMENTS
from api.live.hub import Hub, Viewer
from api.live.tail import DatabaseTail
from tests.api.conftest import Harness, api_settings, running

pytestmark = pytest.mark.anyio
MARGIN = 0.5  # more than the horizon's margin
STATUSES = ("failed", "captured", "authorized", "refunded", "pending")


@pytest.fixture
async def harness(
    api_db: str, api_redis: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    # The tails are stepped by hand below: their threads never start.
    monkeypatch.setattr(DatabaseTail, "start", lambda self: None)
    async with running(api_settings(api_db, api_redis)) as harness:
        yield harness
        hub: Hub = harness.app.state.live
        for tail in hub._tails.values():  # opened by the ticks here, not by threads
            tail._close()
            tail.horizon._close()


def _step(tail: DatabaseTail) -> None:
    """One tick of the tail: a horizon reading, then the followed lists up to it."""
    tail.horizon._advance()
    horizon = tail.horizon.value
    assert horizon is not None
    tail.step(horizon)


async def _tick(tail: DatabaseTail) -> int:
    """Statements one tick costs; its batches are handed to the hub before returning."""
    before = tail.statements
    await anyio.to_thread.run_sync(_step, tail)
    for _ in range(3):
        await asyncio.sleep(0)
    return tail.statements - before


def _commit(harness: Harness, statuses: tuple[str, ...]) -> list[int]:
    rows = harness.sql(
        "INSERT INTO platform.transactions (id, customer_id, amount_cents, currency, status, "
        "psp, payment_intent_id, livemode) "
        "SELECT n.id + s.i, (SELECT min(id) FROM platform.customers), 100, 'USD', s.status, "
        "'stripe', 'pi_tail_' || (n.id + s.i), true "
        "FROM (SELECT max(id) AS id FROM platform.transactions) n, "
        "unnest(%s::text[]) WITH ORDINALITY AS s(status, i) RETURNING id",
        (list(statuses),),
    )
    return [r[0] for r in rows]


async def _subscribe(hub: Hub, tail: DatabaseTail, status: str | None) -> Viewer:
    matches: Any = (lambda row: row["status"] == status) if status else (lambda row: True)
    pending = asyncio.ensure_future(
        hub.subscribe(PAYMENTS.name, None, matches, status, lambda n, rows: [{"n": len(rows)}])
    )
    while not pending.done():
        await _tick(tail)
    return pending.result()


def _delivered(viewer: Viewer) -> int:
    count = 0
    while not viewer.queue.empty():
        event = viewer.queue.get_nowait()
        count += sum(r["n"] for r in event.rows)
    return count


async def test_statements_do_not_grow_with_viewers(harness: Harness) -> None:
    hub: Hub = harness.app.state.live
    tail = hub._tail("platform")
    first = await _subscribe(hub, tail, None)
    _delivered(first)
    _commit(harness, STATUSES)
    await anyio.sleep(MARGIN)  # until the horizon passes the commit
    one_viewer = await _tick(tail)
    assert _delivered(first) == len(STATUSES)

    viewers = [await _subscribe(hub, tail, STATUSES[i % 5]) for i in range(299)]
    for viewer in (first, *viewers):
        _delivered(viewer)
    _commit(harness, STATUSES)
    await anyio.sleep(MARGIN)
    many_viewers = await _tick(tail)

    assert one_viewer == many_viewers == 2  # the horizon's reading and one window
    assert _delivered(first) == len(STATUSES)
    assert all(_delivered(v) == 1 for v in viewers)  # its status only


async def test_a_list_no_one_follows_is_not_read(harness: Harness) -> None:
    hub: Hub = harness.app.state.live
    tail = hub._tail("platform")
    viewer = await _subscribe(hub, tail, None)
    hub.unsubscribe(viewer)
    hub._followed[PAYMENTS.name].lease_until = 0.0
    with anyio.fail_after(5):
        while PAYMENTS.name in tail.followed:
            await anyio.sleep(0.2)
    _commit(harness, ("captured",))
    before = tail.queries
    await _tick(tail)
    assert tail.queries == before
    assert hub._followed[PAYMENTS.name].position is None
    assert hub._followed[PAYMENTS.name].origin is None
