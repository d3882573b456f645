"""The escalation engine: the on-call file's policy as durable steps in PostgreSQL.

When an incident opens, every step of its policy is planned as a row (level x round, due
at ``opened + round * policy length + level.from_minute``). :func:`fire_due` claims due
steps ``FOR UPDATE SKIP LOCKED`` and, in the same transaction, marks them fired and queues
their notifications: a step fires exactly once, whatever crashes between ticks, and a step
of an acknowledged incident never fires (acknowledging cancels the rest). The clock is a
parameter, so tests move time by hand.

A change of team or severity while nobody has acknowledged the incident, and a reopen,
redraw the plan (:func:`replan`): the pending steps are cancelled and the (new) team's
policy is planned again from the change, as the plan's next generation, so the people it
names are paged from its first level with the transports the (new) severity calls for.
The Slack message is posted once, by the first plan; later changes update it.
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
    generation: int = 0,
) -> int:
    """Plan the incident's steps from ``opened``; with PagerDuty as the pager of record only
    the first (PagerDuty escalates from there). Returns how many were planned."""
    levels = oncall.policy(oncall.team(team).escalation_policy).levels
    if settings.pager_of_record == "pagerduty":
        levels, rounds = levels[:1], 1
    else:
        rounds = 1 + settings.repeat_rounds
    length = _policy_minutes(oncall, team)
    for round_ in range(rounds):
        for index, level in enumerate(levels):
            due = opened + timedelta(minutes=round_ * length + level.from_minute)
            params = {
                "incident": incident,
                "plan": generation,
                "level": index,
                "round": round_,
                "due_at": due,
            }
            await conn.execute(sql.PLAN_STEP, params)
    return rounds * len(levels)


async def stop(conn: Conn, incident: int, now: datetime) -> None:
    """No further step of this incident fires (acknowledged or resolved)."""
    await conn.execute(sql.CANCEL_STEPS, {"incident": incident, "now": now})


async def replan(
    conn: Conn, incident: int, team: str, now: datetime, oncall: OnCall, settings: IncidentSettings
) -> int:
    """Cancel the pending steps and plan ``team``'s policy again from ``now`` (the next
    generation). Returns how many steps were planned."""
    await stop(conn, incident, now)
    row = await (await conn.execute(sql.NEXT_PLAN, {"incident": incident})).fetchone()
    generation = int(row[0]) if row else 0
    planned = await plan(conn, incident, team, now, oncall, settings, generation)
    detail = {"team": team, "plan": generation, "steps": planned}
    await add_event(conn, incident, "replanned", ENGINE, now, detail)
    return planned


async def update_slack(conn: Conn, incident: int, kind: str, now: datetime) -> bool:
    """Queue an update of the incident's Slack message, when it was announced there; the
    footer tells ``kind`` (see :func:`api.incidents.transports.slack.footer`)."""
    row = await (await conn.execute(sql.SLACK_ANNOUNCED, {"incident": incident})).fetchone()
    if not (row and row[0]):
        return False
    await notify(conn, incident, "slack", "update", kind, now)
    return True


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


def paged_at(oncall: OnCall, team: str, level: int, at: datetime) -> tuple[str, ...]:
    """The user ids a ``level`` of ``team``'s policy pages at ``at``."""
    targets = oncall.policy(oncall.team(team).escalation_policy).levels[level].targets
    return tuple(oncall.schedule(s).on_call(at) for s in targets)


async def _fire(
    conn: Conn, row: tuple[Any, ...], now: datetime, oncall: OnCall, settings: IncidentSettings
) -> Fired:
    step, incident, level, round_, team, severity, generation = row
    team = team or settings.default_team
    await conn.execute(sql.MARK_FIRED, {"id": step, "now": now})
    paged = paged_at(oncall, team, level, now)
    if level == 0 and round_ == 0:
        if generation == 0:  # later plans update the message the first one posted
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
    detail = {"level": level, "round": round_, "plan": generation, "paged": list(paged)}
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
