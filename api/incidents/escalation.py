"""The escalation engine: the on-call file's policy as durable steps in PostgreSQL.

When an incident opens, every step of its policy is planned as a row (level x round, due
at ``opened + round * policy length + level.from_minute``). :func:`fire_due` claims due
steps ``FOR UPDATE SKIP LOCKED`` and, in the same transaction, marks them fired and queues
their notifications: a step fires exactly once, whatever crashes between ticks, and a step
of an acknowledged incident never fires (acknowledging cancels the rest). The clock is a
parameter, so tests move time by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from api.incidents.queries import escalation as sql
from api.incidents.timeline import add_event
from core.oncall import OnCall
from core.settings import IncidentSettings

Conn = psycopg.AsyncConnection[Any]
ENGINE = "escalation"
CLAIM_BATCH = 100


@dataclass(frozen=True)
class Fired:
    incident: int
    level: int
    round: int
    paged: tuple[str, ...]  # user ids


def pagers(settings: IncidentSettings) -> list[str]:
    """The outside pagers that hear trigger, acknowledge and resolve (the alert mirrored
    there, keyed by the incident's dedup key)."""
    found = []
    if settings.pagerduty_routing_key is not None:
        found.append("pagerduty")
    if settings.opsgenie_api_key is not None:
        found.append("opsgenie")
    return found


async def tell_pagers(conn: Conn, incident: int, kind: str, now: datetime) -> None:
    """Acknowledge or resolve the incident in each pager it was triggered in."""
    rows = await (await conn.execute(sql.TRIGGERED_PAGERS, {"incident": incident})).fetchall()
    for (pager,) in rows:
        await notify(conn, incident, pager, "api", kind, now)


def _policy_minutes(oncall: OnCall, team: str) -> int:
    return oncall.policy(oncall.team(team).escalation_policy).levels[-1].to_minute


async def plan(
    conn: Conn,
    incident: int,
    team: str,
    opened: datetime,
    oncall: OnCall,
    settings: IncidentSettings,
) -> int:
    """Plan the incident's steps; with PagerDuty as the pager of record only the first
    (PagerDuty escalates from there). Returns how many were planned."""
    levels = oncall.policy(oncall.team(team).escalation_policy).levels
    if settings.pager_of_record == "pagerduty":
        levels, rounds = levels[:1], 1
    else:
        rounds = 1 + settings.repeat_rounds
    length = _policy_minutes(oncall, team)
    for round_ in range(rounds):
        for index, level in enumerate(levels):
            due = opened + timedelta(minutes=round_ * length + level.from_minute)
            params = {"incident": incident, "level": index, "round": round_, "due_at": due}
            await conn.execute(sql.PLAN_STEP, params)
    return rounds * len(levels)


async def stop(conn: Conn, incident: int, now: datetime) -> None:
    """No further step of this incident fires (acknowledged or resolved)."""
    await conn.execute(sql.CANCEL_STEPS, {"incident": incident, "now": now})


async def notify(
    conn: Conn,
    incident: int,
    transport: str,
    recipient: str,
    kind: str,
    now: datetime,
    payload: Mapping[str, Any] | None = None,
    step: int | None = None,
) -> None:
    """Queue one notification in the caller's transaction (sent by the notifier)."""
    params = {
        "incident": incident,
        "step": step,
        "transport": transport,
        "recipient": recipient,
        "kind": kind,
        "payload": Jsonb(dict(payload or {})),
        "now": now,
    }
    await conn.execute(sql.NOTIFY, params)


def _paged(oncall: OnCall, team: str, level: int, at: datetime) -> tuple[str, ...]:
    targets = oncall.policy(oncall.team(team).escalation_policy).levels[level].targets
    return tuple(oncall.schedule(s).on_call(at) for s in targets)


async def _fire(
    conn: Conn, row: tuple[Any, ...], now: datetime, oncall: OnCall, settings: IncidentSettings
) -> Fired:
    step, incident, level, round_, team, severity = row
    team = team or settings.default_team
    await conn.execute(sql.MARK_FIRED, {"id": step, "now": now})
    paged = _paged(oncall, team, level, now)
    first = level == 0 and round_ == 0
    if first:
        channel = oncall.team(team).slack_channel
        await notify(conn, incident, "slack", channel, "page", now, step=step)
        for pager in pagers(settings) if severity in settings.page_severities else ():
            await notify(conn, incident, pager, "api", "trigger", now, step=step)
    if settings.pager_of_record == "opsdeck":
        for user in paged:
            person = oncall.user(user)
            payload = {"level": level, "round": round_, "user": user}
            await notify(conn, incident, "email", person.email, "page", now, payload, step=step)
            if severity == "critical":  # seed 001: SMS for critical
                await notify(conn, incident, "sms", person.phone, "page", now, payload, step=step)
    detail = {"level": level, "round": round_, "paged": list(paged)}
    await add_event(conn, incident, "escalation", ENGINE, now, detail)
    return Fired(incident, level, round_, paged)


async def fire_due(
    conn: Conn, now: datetime, oncall: OnCall, settings: IncidentSettings
) -> list[Fired]:
    """Fire every step due at ``now``, in one transaction (commit or nothing happened)."""
    async with conn.transaction():
        rows = await (
            await conn.execute(sql.CLAIM_DUE, {"now": now, "limit": CLAIM_BATCH})
        ).fetchall()
        return [await _fire(conn, row, now, oncall, settings) for row in rows]


async def steps(conn: Conn, incident: int) -> list[tuple[Any, ...]]:
    return list(await (await conn.execute(sql.STEPS, {"incident": incident})).fetchall())
