"""Putting webhooks back in line: replay one delivery, replay an endpoint's failed deliveries
over a time range, recover the deliveries that were never created, send a test message,
and reprocess dead letters (the one-click action behind the "Webhook Retry Queue > 50"
alert). Each runs in the caller's transaction and wakes the workers at commit.

Replays and test messages are single attempts; recovered deliveries follow the full retry
schedule, like any delivery created on time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from gateway.outbox import Enqueued, enqueue_async
from gateway.queries import outbox as outbox_sql
from gateway.queries import replay as sql

TEST_EVENT = "webhook.test"


@dataclass(frozen=True)
class RangeResult:
    matched: int  # how many the range holds
    done: int  # how many were put back in line (0 on a dry run)

    @property
    def truncated(self) -> bool:
        return self.done < self.matched


async def _wake(conn: psycopg.AsyncConnection[Any], what: str) -> None:
    await conn.execute(outbox_sql.NOTIFY, {"what": what})


async def _count(conn: psycopg.AsyncConnection[Any], query: str, params: dict[str, Any]) -> int:
    row = await (await conn.execute(query, params)).fetchone()
    return int(row[0]) if row else 0


async def _ids(conn: psycopg.AsyncConnection[Any], query: str, params: dict[str, Any]) -> list[int]:
    return [int(r[0]) for r in await (await conn.execute(query, params)).fetchall()]


async def replay_delivery(conn: psycopg.AsyncConnection[Any], delivery_id: int) -> str | None:
    """Send one delivery again. None when done; else why not ('missing', 'pending')."""
    ids = await _ids(conn, sql.REPLAY_DELIVERY, {"id": delivery_id, "trigger": "replay"})
    if not ids:
        row = await (await conn.execute(sql.DELIVERY_STATUS, {"id": delivery_id})).fetchone()
        return "missing" if row is None else str(row[0])
    await conn.execute(sql.RESOLVE_OUTBOUND, {"ids": ids, "how": "replayed"})
    await _wake(conn, "outbound")
    return None


@dataclass(frozen=True)
class RangeAction:
    """An action over an endpoint's deliveries created in [since, until)."""

    count: str  # how many the range holds
    act: str  # put the oldest ``limit`` of them in line; returns their delivery ids
    resolves_dead_letters: bool  # the deliveries were dead: their dead letters are closed


RANGE_ACTIONS = {
    # Send the endpoint's dead deliveries again.
    "replay": RangeAction(sql.COUNT_FAILED, sql.REPLAY_FAILED, resolves_dead_letters=True),
    # Create the deliveries its filters call for but that were never created (messages from
    # before it existed, or while it was disabled).
    "recover": RangeAction(sql.COUNT_MISSING, sql.RECOVER, resolves_dead_letters=False),
}


async def over_range(
    conn: psycopg.AsyncConnection[Any],
    action: RangeAction,
    endpoint_id: int,
    since: datetime,
    until: datetime,
    *,
    dry_run: bool,
    limit: int,
) -> RangeResult:
    """``action`` over the range: counted, and (unless a dry run) the oldest ``limit`` of it
    put back in line."""
    params: dict[str, Any] = {"endpoint_id": endpoint_id, "since": since, "until": until}
    matched = await _count(conn, action.count, params)
    if dry_run or not matched:
        return RangeResult(matched, 0)
    ids = await _ids(conn, action.act, {**params, "limit": limit})
    if action.resolves_dead_letters:
        await conn.execute(sql.RESOLVE_OUTBOUND, {"ids": ids, "how": "replayed"})
    await _wake(conn, "outbound")
    return RangeResult(matched, len(ids))


async def test_delivery(
    conn: psycopg.AsyncConnection[Any], endpoint_id: int, requested_by: str
) -> Enqueued:
    """A ``webhook.test`` message to this endpoint only (one attempt)."""
    return await enqueue_async(
        conn,
        TEST_EVENT,
        {"endpoint_id": endpoint_id, "requested_by": requested_by},
        source="test",
        endpoint_id=endpoint_id,
        trigger="test",
    )


@dataclass(frozen=True)
class Reprocessed:
    outbound: int
    inbound: int


async def reprocess_dead_letters(
    conn: psycopg.AsyncConnection[Any], direction: str | None, limit: int
) -> Reprocessed:
    """Put open dead letters back in line: inbound events are processed again with a fresh
    retry budget; outbound deliveries of enabled endpoints are sent again (one attempt)."""
    outbound = inbound = 0
    if direction in (None, "outbound"):
        ids = await _ids(conn, sql.REPROCESS_OUTBOUND, {"limit": limit})
        await conn.execute(sql.RESOLVE_OUTBOUND, {"ids": ids, "how": "reprocessed"})
        outbound = len(ids)
    if direction in (None, "inbound"):
        ids = await _ids(conn, sql.REPROCESS_INBOUND, {"limit": limit})
        await conn.execute(sql.RESOLVE_INBOUND, {"ids": ids, "how": "reprocessed"})
        inbound = len(ids)
    if outbound:
        await _wake(conn, "outbound")
    if inbound:
        await _wake(conn, "inbound")
    return Reprocessed(outbound, inbound)
