"""Finance tickets: opened from an alert, an incident or a payment row; moved through
open → in progress → resolved (and reopened); owned by one person. Each function runs in
the caller's transaction and writes the ticket's history."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from api.finance.queries import tickets as sql
from api.problems import Problem

Conn = psycopg.AsyncConnection[Any]
STATUSES = ("open", "in_progress", "resolved")
LABELS = {"open": "Open", "in_progress": "In progress", "resolved": "Resolved"}
# The statuses a ticket may move to from each status.
NEXT: Mapping[str, tuple[str, ...]] = {
    "open": ("in_progress", "resolved"),
    "in_progress": ("resolved", "open"),
    "resolved": ("open",),
}


@dataclass(frozen=True)
class Origin:
    """Where a ticket came from: what the action's link named."""

    transaction: int | None = None
    alertname: str | None = None
    incident: int | None = None
    source: str = "api"


async def add_event(
    conn: Conn, ticket: int, kind: str, actor: str, at: datetime, detail: Mapping[str, Any]
) -> None:
    params = {
        "ticket": ticket,
        "kind": kind,
        "actor": actor,
        "detail": Jsonb(dict(detail)),
        "at": at,
    }
    await conn.execute(sql.EVENT, params)


async def open_ticket(
    conn: Conn,
    origin: Origin,
    actor: str,
    reason: str,
    context: Mapping[str, Any],
    now: datetime,
) -> int:
    params = {
        "actor": actor,
        "reason": reason,
        "context": Jsonb(dict(context)),
        "transaction": origin.transaction,
        "alertname": origin.alertname,
        "incident": origin.incident,
        "source": origin.source,
        "now": now,
    }
    row = await (await conn.execute(sql.OPEN, params)).fetchone()
    assert row is not None
    ticket = int(row[0])
    await add_event(conn, ticket, "opened", actor, now, {"reason": reason, "source": origin.source})
    return ticket


async def _locked(conn: Conn, ticket: int) -> tuple[str, str | None]:
    row = await (await conn.execute(sql.LOCK, {"id": ticket})).fetchone()
    if row is None:
        raise Problem(404, f"no finance ticket {ticket}")
    return str(row[0]), row[1]


async def move(conn: Conn, ticket: int, status: str, actor: str, now: datetime) -> str:
    """Move the ticket to ``status``; its previous status. A move the ticket's status does
    not allow (including to the status it has) is a 409."""
    current, _ = await _locked(conn, ticket)
    if status not in NEXT[current]:
        allowed = ", ".join(NEXT[current])
        raise Problem(409, f"ticket {ticket} is {current}: it can move to {allowed}")
    await conn.execute(sql.SET_STATUS, {"id": ticket, "status": status, "now": now})
    await add_event(conn, ticket, "status", actor, now, {"from": current, "to": status})
    return current


async def assign(conn: Conn, ticket: int, owner: str, actor: str, now: datetime) -> str | None:
    """Give the ticket to ``owner``; its previous owner."""
    _, previous = await _locked(conn, ticket)
    if previous == owner:
        raise Problem(409, f"ticket {ticket} is already owned by {owner}")
    await conn.execute(sql.SET_OWNER, {"id": ticket, "owner": owner, "now": now})
    await add_event(conn, ticket, "owner", actor, now, {"from": previous, "to": owner})
    return previous


async def get(conn: Conn, ticket: int) -> dict[str, Any] | None:
    cursor = await conn.execute(sql.GET, {"id": ticket})
    row = await cursor.fetchone()
    if row is None:
        return None
    assert cursor.description is not None
    return {c.name: v for c, v in zip(cursor.description, row, strict=True)}


async def history(conn: Conn, ticket: int) -> list[dict[str, Any]]:
    rows = await (await conn.execute(sql.HISTORY, {"id": ticket})).fetchall()
    return [{"at": r[0], "kind": r[1], "actor": r[2], "detail": dict(r[3])} for r in rows]
