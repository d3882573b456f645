"""Incidents: opened, updated and resolved from Alertmanager groups, opened by hand,
acknowledged. Each function runs in the caller's transaction and writes the timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from api.incidents import escalation
from api.incidents.alertmanager import Notification, suggested_actions
from api.incidents.queries import incidents as sql
from api.incidents.timeline import add_event
from api.incidents.transports.pagerduty import alertmanager_dedup_key
from api.status import notices as status_notices
from core.oncall import OnCall
from core.settings import IncidentSettings

Conn = psycopg.AsyncConnection[Any]
ALERTMANAGER = "alertmanager"


@dataclass(frozen=True)
class NewIncident:
    title: str
    severity: str
    team: str
    services: list[str]
    started_at: datetime
    summary: str = ""
    runbook_url: str | None = None
    alertname: str | None = None
    group_key: str | None = None
    dedup_key: str | None = None
    source: str = "manual"
    suggested_actions: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Applied:
    incident: int | None
    opened: bool = False
    resolved: bool = False


async def _one(conn: Conn, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = await (await conn.execute(query, params)).fetchone()
    return row


async def open_incident(
    conn: Conn,
    new: NewIncident,
    actor: str,
    now: datetime,
    oncall: OnCall,
    settings: IncidentSettings,
) -> int:
    params = {
        "title": new.title,
        "severity": new.severity,
        "services": new.services,
        "started_at": new.started_at,
        "owner": None,
        "runbook_url": new.runbook_url,
        "group_key": new.group_key,
        "alertname": new.alertname,
        "team": new.team,
        "summary": new.summary,
        "source": new.source,
        "suggested_actions": Jsonb(new.suggested_actions),
    }
    row = await _one(conn, sql.OPEN, params)
    assert row is not None
    incident = int(row[0])
    dedup = new.dedup_key or f"opsdeck-incident-{incident}"
    await conn.execute(sql.SET_DEDUP_KEY, {"dedup": dedup, "incident": incident})
    await add_event(conn, incident, "opened", actor, now, {"source": new.source})
    await escalation.plan(conn, incident, new.team, new.started_at, oncall, settings)
    await status_notices.opened(conn, incident, new.alertname, now)
    return incident


def _from_alerts(note: Notification, settings: IncidentSettings) -> NewIncident:
    alertname = note.label("alertname", "alert")
    summary = note.annotation("summary")
    return NewIncident(
        title=f"{alertname}: {summary}" if summary else alertname,
        severity=note.label("severity", "medium"),
        team=note.label("team", settings.default_team),
        services=note.services,
        started_at=note.started_at,
        summary=note.annotation("description") or summary,
        runbook_url=note.annotation("runbook_url") or None,
        alertname=alertname,
        group_key=note.groupKey,
        dedup_key=alertmanager_dedup_key(note.groupKey),
        source=ALERTMANAGER,
        suggested_actions=suggested_actions(note.annotation("actions")),
    )


async def _record_alerts(conn: Conn, incident: int, note: Notification) -> None:
    for alert in note.alerts:
        params = {
            "incident": incident,
            "fingerprint": alert.fingerprint,
            "alertname": alert.labels.get("alertname", ""),
            "status": alert.status,
            "labels": Jsonb(alert.labels),
            "starts_at": alert.startsAt,
            "ends_at": alert.ended,
        }
        await conn.execute(sql.UPSERT_ALERT, params)


async def apply_notification(
    conn: Conn, note: Notification, now: datetime, oncall: OnCall, settings: IncidentSettings
) -> Applied:
    """Open, update or resolve the incident of an Alertmanager group (deduplicated by
    group key and fingerprints; the group's lock serialises concurrent deliveries)."""
    async with conn.transaction():
        await conn.execute(sql.LOCK_GROUP, {"key": note.groupKey})
        found = await _one(
            conn, sql.FIND_OPEN, {"key": note.groupKey, "fingerprints": note.fingerprints}
        )
        opened = False
        if found is None:
            if all(a.status == "resolved" for a in note.alerts):
                return Applied(None)  # nothing open to resolve: a late or repeated resolve
            incident = await open_incident(
                conn, _from_alerts(note, settings), ALERTMANAGER, now, oncall, settings
            )
            opened = True
        else:
            incident = int(found[0])
        await _record_alerts(conn, incident, note)
        firing = sorted(a.fingerprint for a in note.alerts if a.status == "firing")
        resolved = sorted(a.fingerprint for a in note.alerts if a.status == "resolved")
        await add_event(
            conn, incident, "alerts", ALERTMANAGER, now, {"firing": firing, "resolved": resolved}
        )
        still = await _one(conn, sql.FIRING_ALERTS, {"incident": incident})
        if still is not None and still[0] == 0:
            await resolve(conn, incident, ALERTMANAGER, now)
            return Applied(incident, opened, resolved=True)
        return Applied(incident, opened)


async def acknowledge(
    conn: Conn, incident: int, actor: str, now: datetime, via: str, reason: str = ""
) -> bool:
    """Acknowledge (once): escalation stops, PagerDuty hears it, Slack's message changes."""
    row = await _one(conn, sql.ACKNOWLEDGE, {"incident": incident, "actor": actor, "at": now})
    if row is None:
        return False
    await escalation.stop(conn, incident, now)
    detail = {"via": via, "reason": reason} if reason else {"via": via}
    await add_event(conn, incident, "acknowledged", actor, now, detail)
    await escalation.tell_pagers(conn, incident, "acknowledge", now)
    await status_notices.acknowledged(conn, incident, now)
    await escalation.update_slack(conn, incident, f"ack:{actor}", now)
    return True


async def resolve(conn: Conn, incident: int, actor: str, now: datetime, reason: str = "") -> bool:
    """Resolve (once): escalation stops, the pagers and Slack's message hear it."""
    row = await _one(conn, sql.RESOLVE, {"incident": incident, "actor": actor, "at": now})
    if row is None:
        return False
    await escalation.stop(conn, incident, now)
    await add_event(conn, incident, "resolved", actor, now, {"reason": reason} if reason else None)
    await escalation.tell_pagers(conn, incident, "resolve", now)
    await status_notices.resolved(conn, incident, now)
    await escalation.update_slack(conn, incident, f"resolved:{actor}", now)
    return True


async def get(conn: Conn, incident: int) -> dict[str, Any] | None:
    cursor = await conn.execute(sql.GET, {"incident": incident})
    row = await cursor.fetchone()
    if row is None:
        return None
    assert cursor.description is not None
    return {c.name: v for c, v in zip(cursor.description, row, strict=True)}


async def open_by_alertname(conn: Conn, alertname: str) -> list[int]:
    rows = await (await conn.execute(sql.OPEN_BY_ALERTNAME, {"alertname": alertname})).fetchall()
    return [int(r[0]) for r in rows]


async def open_counts(conn: Conn) -> dict[str, int]:
    rows = await (await conn.execute(sql.OPEN_BY_SEVERITY)).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}
