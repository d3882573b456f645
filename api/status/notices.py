"""Public notices of incidents on customer-facing components, kept in step with the
incident by the incident store, in its transaction:

- :func:`opened` when an incident opens: an incident of an alert in
  :data:`~api.status.components.ALERT_COMPONENTS` opens a notice, "investigating";
- :func:`acknowledged` when someone acknowledges it: "identified";
- :func:`resolved` when it is resolved: "resolved".

Notices speak public words only: a component's name and fixed sentences, never an alert
name, a host, a team or a person; :func:`edit` lets an operator reword the title and the
latest update. Incidents of other alerts have no notice, and these calls do nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from api.problems import Problem
from api.status.components import ALERT_COMPONENTS, BY_ID
from api.status.queries import status as sql

Conn = psycopg.AsyncConnection[Any]
AUTOMATIC = "opsdeck"  # the author of the updates the incident's lifecycle writes
MESSAGES = {
    "investigating": "We are investigating reports of problems with {component}.",
    "identified": "We have identified the problem with {component} and are working on a fix.",
    "resolved": "{component} is working normally again. We are sorry for the disruption.",
}
STATUS_LABELS = {
    "investigating": "Investigating",
    "identified": "Identified",
    "monitoring": "Monitoring",
    "resolved": "Resolved",
}


async def _update(conn: Conn, notice: int, component: str, status: str, now: datetime) -> None:
    message = MESSAGES[status].format(component=BY_ID[component].name)
    params = {
        "notice": notice,
        "now": now,
        "status": status,
        "message": message,
        "author": AUTOMATIC,
    }
    await conn.execute(sql.ADD_UPDATE, params)


async def opened(conn: Conn, incident: int, alertname: str | None, now: datetime) -> int | None:
    """The notice opened for ``incident``, or None when its alert is not customer-facing."""
    component = ALERT_COMPONENTS.get(alertname or "")
    if component is None:
        return None
    params = {
        "incident": incident,
        "component": component,
        "title": BY_ID[component].notice_title,
        "now": now,
    }
    row = await (await conn.execute(sql.OPEN_NOTICE, params)).fetchone()
    if row is None:
        return None
    notice = int(row[0])
    await _update(conn, notice, component, "investigating", now)
    return notice


async def _move(conn: Conn, incident: int, status: str, now: datetime, *, only_from: str) -> None:
    row = await (await conn.execute(sql.NOTICE_OF_INCIDENT, {"incident": incident})).fetchone()
    if row is None or (only_from and row[1] != only_from):
        return
    notice = int(row[0])
    await conn.execute(sql.SET_STATUS, {"id": notice, "status": status, "now": now})
    found = await (await conn.execute(sql.NOTICE, {"id": notice})).fetchone()
    assert found is not None
    await _update(conn, notice, str(found[1]), status, now)


async def acknowledged(conn: Conn, incident: int, now: datetime) -> None:
    """Someone owns ``incident``: its notice, still investigating, is now identified."""
    await _move(conn, incident, "identified", now, only_from="investigating")


async def resolved(conn: Conn, incident: int, now: datetime) -> None:
    """``incident`` is resolved: so is its notice, if it has one still open."""
    row = await (await conn.execute(sql.NOTICE_OF_INCIDENT, {"incident": incident})).fetchone()
    if row is None or row[1] == "resolved":
        return
    await _move(conn, incident, "resolved", now, only_from="")


async def reopened(conn: Conn, incident: int, now: datetime) -> None:
    """``incident`` was reopened: its resolved notice is investigating again."""
    await _move(conn, incident, "investigating", now, only_from="resolved")


async def edit(
    conn: Conn, notice: int, title: str, message: str, author: str, now: datetime
) -> None:
    """Reword the notice's public title and its latest update."""
    if await (await conn.execute(sql.LOCK_NOTICE, {"id": notice})).fetchone() is None:
        raise Problem(404, f"no status notice {notice}")
    await conn.execute(sql.SET_TITLE, {"id": notice, "title": title, "now": now})
    latest = await (await conn.execute(sql.LATEST_UPDATE, {"notice": notice})).fetchone()
    assert latest is not None, "a notice opens with its first update"
    await conn.execute(sql.EDIT_UPDATE, {"id": latest[0], "message": message})


async def get(conn: Conn, notice: int) -> dict[str, Any] | None:
    cursor = await conn.execute(sql.NOTICE, {"id": notice})
    row = await cursor.fetchone()
    if row is None:
        return None
    assert cursor.description is not None
    return {c.name: v for c, v in zip(cursor.description, row, strict=True)}


async def latest_message(conn: Conn, notice: int) -> str:
    row = await (await conn.execute(sql.LATEST_UPDATE, {"notice": notice})).fetchone()
    return str(row[1]) if row else ""


async def public(conn: Conn, now: datetime, days: int) -> list[dict[str, Any]]:
    """Open notices and those resolved in the last ``days``, with their updates (newest
    first): public fields only."""
    rows = await (await conn.execute(sql.PUBLIC_NOTICES, {"now": now, "days": days})).fetchall()
    notices = [
        {
            "id": r[0],
            "component": BY_ID[r[1]].name,
            "title": r[2],
            "status": r[3],
            "opened_at": r[4],
            "updated_at": r[5],
            "resolved_at": r[6],
            "updates": [],
        }
        for r in rows
    ]
    by_id = {n["id"]: n for n in notices}
    updates = await conn.execute(sql.PUBLIC_UPDATES, {"notices": list(by_id)})
    for notice, at, status, message in await updates.fetchall():
        by_id[notice]["updates"].append({"at": at, "status": status, "message": message})
    return notices
