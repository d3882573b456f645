"""Resolve, Reopen, Reassign, Change severity and Add note: an incident run by hand. Each
names its incident (``incident=``); Resolve, Reassign, Change severity and Add note also
take the open incidents of an alert (``alertname=``), as Acknowledge does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from api.incidents import changes, store
from api.incidents.actions.incident_actions import open_targets, severities, teams
from api.incidents.actions.spec import Conn, Context, Input, Outcome, Summary, Target
from api.incidents.context import Incidents
from api.problems import Problem, invalid
from api.runtime import Runtime

Apply = Callable[[Conn, int, changes.Change, Context], Awaitable[Any]]


SEVERITY = Input("severity", "Severity", "critical, high or medium", severities, required=True)
TEAM = Input("team", "Team", "an on-call team (alert_rules/oncall.yaml)", teams)
OWNER = Input("owner", "Owner", "who owns the incident from now on")


def _change(ctx: Context) -> changes.Change:
    inc = ctx.incidents
    return changes.Change(ctx.actor, ctx.now, ctx.reason, inc.oncall, inc.settings)


async def _listed(runtime: Runtime, ids: list[int]) -> tuple[str, ...]:
    async with runtime.ops.connection() as conn:
        found = [await store.get(conn, i) for i in ids]
    return tuple(
        f"#{f['id']} [{f['severity']}] {f['title']} ({f['status']}; owner {f['owner'] or '-'},"
        f" team {f['team'] or '-'})"
        for f in found
        if f is not None
    )


def open_summary(will: str) -> Callable[[Runtime, Incidents, Target], Awaitable[Summary]]:
    async def summarize(runtime: Runtime, incidents: Incidents, target: Target) -> Summary:
        if target.incident is None and not target.alertname:
            return Summary("Name the incident or the alert.", {"incidents": 0})
        async with runtime.ops.connection() as conn:
            ids = await open_targets(conn, target)
        return Summary(will, {"incidents": len(ids)}, await _listed(runtime, ids))

    return summarize


def on_open(apply: Apply, done: str) -> Callable[[Context], Awaitable[Outcome]]:
    """The effect that applies ``apply`` to each open incident the target names."""

    async def effect(ctx: Context) -> Outcome:
        change = _change(ctx)
        async with ctx.runtime.ops.connection() as conn, conn.transaction():
            ids = await open_targets(conn, ctx.target)
            results = {i: await apply(conn, i, change, ctx) for i in ids}
        if not ids:
            raise Problem(409, "no open incident matches; reopen it first")
        changed = [i for i, result in results.items() if result]
        return Outcome(f"{done} {len(changed)} incident(s)", {done: changed}, tuple(ids))

    return effect


async def _resolve(conn: Conn, incident: int, change: changes.Change, ctx: Context) -> bool:
    return await store.resolve(conn, incident, change.actor, change.at, change.reason)


async def _reassign(conn: Conn, incident: int, change: changes.Change, ctx: Context) -> Any:
    owner, team = ctx.inputs.get("owner"), ctx.inputs.get("team")
    if owner is None and team is None:
        raise invalid("owner", "name the new owner, the new team, or both")
    return await changes.reassign(conn, incident, change, owner, team)


async def _severity(conn: Conn, incident: int, change: changes.Change, ctx: Context) -> Any:
    return await changes.set_severity(conn, incident, change, str(ctx.inputs["severity"]))


async def _note(conn: Conn, incident: int, change: changes.Change, ctx: Context) -> bool:
    await changes.add_note(conn, incident, change, change.reason)
    return True


resolve = on_open(_resolve, "resolved")
reassign = on_open(_reassign, "reassigned")
set_severity = on_open(_severity, "changed")


async def note_summary(runtime: Runtime, incidents: Incidents, target: Target) -> Summary:
    if target.incident is None:
        return Summary("Name the incident to add a note to.", {"incidents": 0})
    items = await _listed(runtime, [target.incident])
    return Summary("Add a note to the incident's timeline.", {"incidents": len(items)}, items)


async def add_note(ctx: Context) -> Outcome:
    """A note goes on any incident, resolved ones too (what was learnt afterwards)."""
    incident = _incident(ctx.target)
    async with ctx.runtime.ops.connection() as conn, conn.transaction():
        if await store.get(conn, incident) is None:
            raise Problem(404, f"no incident {incident}")
        await _note(conn, incident, _change(ctx), ctx)
    return Outcome(f"note added to incident #{incident}", {"noted": [incident]}, (incident,))


def _incident(target: Target) -> int:
    if target.incident is None:
        raise invalid("incident", "name the incident")
    return target.incident


async def reopen_summary(runtime: Runtime, incidents: Incidents, target: Target) -> Summary:
    if target.incident is None:
        return Summary("Name the incident to reopen.", {"incidents": 0})
    async with runtime.ops.connection() as conn:
        found = await store.get(conn, target.incident)
    resolved = [target.incident] if found and found["resolved_at"] is not None else []
    return Summary(
        "Reopen: the incident is triggered again and escalates from the first level.",
        {"incidents": len(resolved)},
        await _listed(runtime, resolved),
    )


async def reopen(ctx: Context) -> Outcome:
    incident = _incident(ctx.target)
    try:
        async with ctx.runtime.ops.connection() as conn, conn.transaction():
            done = await changes.reopen(conn, incident, _change(ctx))
    except psycopg.errors.UniqueViolation:
        raise Problem(409, "its alert group has opened another incident since") from None
    if not done:
        raise Problem(409, f"incident {incident} is not resolved (or does not exist)")
    return Outcome(f"reopened incident #{incident}", {"reopened": [incident]}, (incident,))
