"""What a person changes on an incident besides acknowledging and resolving it: reopen,
reassign (owner and team), change the severity, add a note. Each runs in the caller's
transaction, writes the timeline and updates the Slack message of an incident announced
there; a change of team or severity before anyone acknowledged, and a reopen, redraw the
escalation plan (:func:`api.incidents.escalation.replan`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from api.incidents import escalation
from api.incidents.queries import incidents as sql
from api.incidents.timeline import add_event
from api.status import notices as status_notices
from core.oncall import OnCall
from core.settings import IncidentSettings

Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class Change:
    """Who changes an incident, when, why, and the escalation policy it may redraw."""

    actor: str
    at: datetime
    reason: str
    oncall: OnCall
    settings: IncidentSettings

    def team(self, team: str | None) -> str:
        return team or self.settings.default_team


async def _row(conn: Conn, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = await (await conn.execute(query, params)).fetchone()
    return row


async def reopen(conn: Conn, incident: int, change: Change) -> bool:
    """A resolved incident is triggered again and escalates from the first level."""
    row = await _row(conn, sql.REOPEN, {"incident": incident, "at": change.at})
    if row is None:
        return False
    await add_event(conn, incident, "reopened", change.actor, change.at, {"reason": change.reason})
    await escalation.replan(
        conn, incident, change.team(row[0]), change.at, change.oncall, change.settings
    )
    await escalation.update_slack(conn, incident, f"reopened:{change.actor}", change.at)
    await status_notices.reopened(conn, incident, change.at)
    return True


async def reassign(
    conn: Conn, incident: int, change: Change, owner: str | None, team: str | None
) -> dict[str, Any] | None:
    """A new owner and/or team for an open incident; None when it is resolved (or
    unknown). A new team escalates through its own policy unless someone acknowledged."""
    params = {"incident": incident, "owner": owner, "team": team, "at": change.at}
    row = await _row(conn, sql.REASSIGN, params)
    if row is None:
        return None
    old_owner, old_team, new_owner, new_team, status = row
    detail = {
        "owner": {"from": old_owner, "to": new_owner},
        "team": {"from": change.team(old_team), "to": change.team(new_team)},
        "reason": change.reason,
    }
    await add_event(conn, incident, "reassigned", change.actor, change.at, detail)
    if status == "triggered" and change.team(old_team) != change.team(new_team):
        await escalation.replan(
            conn, incident, change.team(new_team), change.at, change.oncall, change.settings
        )
    await escalation.update_slack(conn, incident, f"reassigned:{change.actor}", change.at)
    return detail


async def set_severity(
    conn: Conn, incident: int, change: Change, severity: str
) -> dict[str, Any] | None:
    """A new severity for an open incident; None when it is resolved (or unknown). Before
    anyone acknowledged, escalation is redrawn with the transports the severity calls for."""
    params = {"incident": incident, "severity": severity, "at": change.at}
    row = await _row(conn, sql.SET_SEVERITY, params)
    if row is None:
        return None
    old, team, status = row
    detail = {"severity": {"from": old, "to": severity}, "reason": change.reason}
    await add_event(conn, incident, "severity", change.actor, change.at, detail)
    if status == "triggered" and old != severity:
        await escalation.replan(
            conn, incident, change.team(team), change.at, change.oncall, change.settings
        )
    await escalation.update_slack(conn, incident, f"severity:{change.actor}", change.at)
    return detail


async def add_note(conn: Conn, incident: int, change: Change, text: str) -> None:
    """A note on the timeline (open or resolved incidents alike)."""
    await add_event(conn, incident, "note", change.actor, change.at, {"text": text})
    await escalation.update_slack(conn, incident, f"note:{change.actor}", change.at)
