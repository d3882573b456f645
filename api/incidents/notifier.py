"""Sends queued notifications through their transports, with retries.

Each due notification is claimed ``FOR UPDATE SKIP LOCKED`` in its own transaction, sent,
and marked sent; a transient failure comes back after the retry schedule, each delay
+/- ``retry_jitter``, or later when the server's ``Retry-After`` asks for longer (up to
``max_retry_after_seconds``): :func:`core.retry.next_delay`, where ``ops.notifications.attempts``
counts the attempts before this one. A permanent failure (4xx), or a transient one past the
schedule, is marked failed at once and never resent.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from api.incidents import store
from api.incidents.queries import escalation as sql
from api.incidents.timeline import add_event
from api.incidents.transports.base import Outgoing, Transport
from api.incidents.transports.http import TransportError
from core.retry import next_delay
from core.settings import IncidentSettings

log = logging.getLogger(__name__)
Conn = psycopg.AsyncConnection[Any]
BATCH = 20
_rng = random.Random()  # jitter needs spread, not reproducibility


async def _previous(conn: Conn, incident: int, transport: str) -> dict[str, Any] | None:
    if transport != "slack":
        return None
    row = await (await conn.execute(sql.SLACK_MESSAGE, {"incident": incident})).fetchone()
    return dict(row[0]) if row and row[0] else None


def _delay(settings: IncidentSettings, attempts: int, error: TransportError) -> float | None:
    """Seconds until the next try after the failure of attempt ``attempts + 1``, or None."""
    if error.permanent:
        return None
    return next_delay(
        settings.retry_schedule_seconds,
        attempts + 1,
        jitter=settings.retry_jitter,
        rng=_rng,
        retry_after=error.retry_after,
        max_retry_after=settings.max_retry_after_seconds,
    )


async def _failed(
    conn: Conn,
    row: tuple[Any, ...],
    error: TransportError,
    now: datetime,
    settings: IncidentSettings,
) -> None:
    ident, incident, transport, _, kind, _, attempts = row
    delay = _delay(settings, attempts, error)
    if delay is None:
        await conn.execute(sql.FAILED, {"id": ident, "error": str(error)})
        detail = {"transport": transport, "kind": kind, "error": str(error)}
        await add_event(conn, incident, "notification_failed", transport, now, detail)
        return
    later = now + timedelta(seconds=delay)
    await conn.execute(sql.RETRY, {"id": ident, "next": later, "error": str(error)})


async def _send_one(
    conn: Conn,
    row: tuple[Any, ...],
    transports: Mapping[str, Transport],
    now: datetime,
    settings: IncidentSettings,
) -> None:
    ident, incident, transport, recipient, kind, payload, _ = row
    sender = transports.get(transport)
    if sender is None:
        error = TransportError(f"no {transport} transport is configured", permanent=True)
        await _failed(conn, row, error, now, settings)
        return
    snapshot = await store.get(conn, incident)
    assert snapshot is not None
    note = Outgoing(
        ident, kind, recipient, payload, snapshot, await _previous(conn, incident, transport)
    )
    try:
        answer = await sender.send(note)
    except TransportError as error:
        log.warning("notification %s via %s failed: %s", ident, transport, error)
        await _failed(conn, row, error, now, settings)
        return
    except Exception as error:  # a bug in one message must not hold up the queue behind it
        log.exception("notification %s via %s raised", ident, transport)
        failure = TransportError(f"{transport}: {error!r}", permanent=True)  # it would recur
        await _failed(conn, row, failure, now, settings)
        return
    await conn.execute(sql.SENT, {"id": ident, "now": now, "response": Jsonb(answer)})
    detail = {"transport": transport, "kind": kind, "recipient": recipient}
    await add_event(conn, incident, "notified", transport, now, detail)


async def deliver_due(
    conn: Conn, transports: Mapping[str, Transport], now: datetime, settings: IncidentSettings
) -> int:
    """Send what is due, one notification per transaction; how many were attempted."""
    done = 0
    while done < BATCH:
        async with conn.transaction():
            claim = await conn.execute(sql.CLAIM_NOTIFICATIONS, {"now": now, "limit": 1})
            row = await claim.fetchone()
            if row is None:
                return done
            await _send_one(conn, row, transports, now, settings)
        done += 1
    return done
