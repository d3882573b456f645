"""The outbox: outbound messages are written in the transaction that causes them.

Call :func:`enqueue` (or :func:`enqueue_async` from the API) with the connection of your own
transaction, before you commit. The message, one delivery per enabled endpoint whose event
filters match (a message addressed to one endpoint, a test event, goes to it whatever its
filters), and a NOTIFY that wakes the workers all commit with your change, or not at
all: a message is never stored without its deliveries, and never queued after a commit
that might not happen. ``source_key`` makes it idempotent: enqueueing the same key twice
(a retried action, the tail folding a window again) returns the first message.

The body follows the Standard Webhooks payload shape: ``{"type", "timestamp", "data"}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from gateway.queries import outbox as sql

EVENT_TYPE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
OUTBOUND = "outbound"


class InvalidEvent(ValueError):
    """An event type or payload that cannot be sent."""


@dataclass(frozen=True)
class Event:
    event_type: str
    data: Mapping[str, Any]
    source: str = "action"
    source_key: str | None = None
    occurred_at: datetime | None = None
    endpoint_id: int | None = None  # only to this endpoint (test deliveries)


@dataclass(frozen=True)
class Enqueued:
    message_id: int
    uid: str  # the webhook-id receivers see
    deliveries: int
    created: bool  # False: the source_key had been enqueued before


def message_body(event_type: str, data: Mapping[str, Any], occurred_at: datetime) -> str:
    """The exact JSON text sent and signed."""
    stamp = occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"type": event_type, "timestamp": stamp, "data": dict(data)},
        separators=(",", ":"),
        default=str,
    )


def _params(events: Sequence[Event], trigger: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    for event in events:
        if not EVENT_TYPE.match(event.event_type):
            raise InvalidEvent(f"event type {event.event_type!r} is not like 'payment.succeeded'")
    return {
        "types": [e.event_type for e in events],
        "bodies": [message_body(e.event_type, e.data, e.occurred_at or now) for e in events],
        "sources": [e.source for e in events],
        "keys": [e.source_key for e in events],
        "endpoints": [e.endpoint_id for e in events],
        "trigger": trigger,
    }


def _event(
    event_type: str,
    data: Mapping[str, Any],
    source: str,
    source_key: str | None,
    endpoint_id: int | None,
) -> Event:
    return Event(event_type, data, source, source_key, endpoint_id=endpoint_id)


def enqueue(
    conn: psycopg.Connection[Any],
    event_type: str,
    data: Mapping[str, Any],
    *,
    source: str = "action",
    source_key: str | None = None,
    endpoint_id: int | None = None,
    trigger: str = "scheduled",
) -> Enqueued:
    """Enqueue one message in ``conn``'s current transaction (commit is the caller's)."""
    params = _params([_event(event_type, data, source, source_key, endpoint_id)], trigger)
    row = conn.execute(sql.ENQUEUE_ONE, params).fetchone()
    if row is None:
        row = conn.execute(sql.EXISTING, {"key": source_key}).fetchone()
        assert row is not None, "a conflicting source_key must exist"
    conn.execute(sql.NOTIFY, {"what": OUTBOUND})
    return Enqueued(int(row[0]), str(row[1]), int(row[2]), bool(row[3]))


async def enqueue_async(
    conn: psycopg.AsyncConnection[Any],
    event_type: str,
    data: Mapping[str, Any],
    *,
    source: str = "action",
    source_key: str | None = None,
    endpoint_id: int | None = None,
    trigger: str = "scheduled",
) -> Enqueued:
    """:func:`enqueue` for the API's async connections."""
    params = _params([_event(event_type, data, source, source_key, endpoint_id)], trigger)
    row = await (await conn.execute(sql.ENQUEUE_ONE, params)).fetchone()
    if row is None:
        row = await (await conn.execute(sql.EXISTING, {"key": source_key})).fetchone()
        assert row is not None, "a conflicting source_key must exist"
    await conn.execute(sql.NOTIFY, {"what": OUTBOUND})
    return Enqueued(int(row[0]), str(row[1]), int(row[2]), bool(row[3]))


def enqueue_many(
    conn: psycopg.Connection[Any], events: Sequence[Event], trigger: str = "scheduled"
) -> tuple[int, int]:
    """Enqueue a batch in ``conn``'s transaction: (new messages, deliveries created)."""
    if not events:
        return 0, 0
    row = conn.execute(sql.ENQUEUE_MANY, _params(events, trigger)).fetchone()
    conn.execute(sql.NOTIFY, {"what": OUTBOUND})
    assert row is not None
    return int(row[0]), int(row[1])
