"""Acknowledge and Create incident (severity, team and affected services from the form)."""

from __future__ import annotations

from api.incidents import store
from api.incidents.actions.spec import Conn, Context, Input, Outcome, Summary, Target
from api.incidents.context import Incidents
from api.incidents.metrics import SEVERITIES
from api.problems import Problem, invalid
from api.runtime import Runtime

DEFAULT_SEVERITY = "high"


async def open_targets(conn: Conn, target: Target) -> list[int]:
    """The open incidents a target names: its incident, or those of its alert."""
    if target.incident is not None:
        found = await store.get(conn, target.incident)
        return [target.incident] if found and found["resolved_at"] is None else []
    if target.alertname:
        return await store.open_by_alertname(conn, target.alertname)
    raise invalid("alertname", "name the incident or the alert")


async def acknowledge_summary(runtime: Runtime, incidents: Incidents, target: Target) -> Summary:
    if target.incident is None and not target.alertname:
        return Summary("Name the incident or the alert to acknowledge.", {"incidents": 0})
    async with runtime.ops.connection() as conn:
        found = [await store.get(conn, i) for i in await open_targets(conn, target)]
    open_ = [f for f in found if f is not None and f["status"] == "triggered"]
    return Summary(
        "Acknowledge: escalation stops, PagerDuty and Slack are told who owns it.",
        {"incidents": len(open_)},
        tuple(f"#{f['id']} {f['title']}" for f in open_),
    )


async def acknowledge(ctx: Context) -> Outcome:
    async with ctx.runtime.ops.connection() as conn, conn.transaction():
        ids = await open_targets(conn, ctx.target)
        via = ctx.target.source
        done = [
            i for i in ids if await store.acknowledge(conn, i, ctx.actor, ctx.now, via, ctx.reason)
        ]
    if not ids:
        raise Problem(409, "no open incident matches; nothing to acknowledge")
    return Outcome(f"acknowledged {len(done)} incident(s)", {"acknowledged": done}, tuple(ids))


async def create_summary(runtime: Runtime, incidents: Incidents, target: Target) -> Summary:
    async with runtime.ops.connection() as conn:
        existing = await store.open_by_alertname(conn, target.alertname) if target.alertname else []
    if existing:
        return Summary(
            "An incident is already open for this alert; it will be reused.",
            {"incidents": 0},
            tuple(f"#{i}" for i in existing),
        )
    return Summary("Open an incident and start the escalation policy.", {"incidents": 1})


async def create_incident(ctx: Context) -> Outcome:
    target = ctx.target
    async with ctx.runtime.ops.connection() as conn, conn.transaction():
        existing = await store.open_by_alertname(conn, target.alertname) if target.alertname else []
        if existing:
            return Outcome(
                f"incident #{existing[0]} is already open",
                {"incident": existing[0]},
                (existing[0],),
            )
        new = _new_incident(ctx)
        inc = ctx.incidents
        incident = await store.open_incident(
            conn, new, ctx.actor, ctx.now, inc.oncall, inc.settings
        )
    return Outcome(f"opened incident #{incident}", {"incident": incident}, (incident,))


def _new_incident(ctx: Context) -> store.NewIncident:
    """The incident the form describes; what it leaves out is the alert's, or the defaults."""
    target, given = ctx.target, ctx.inputs
    fallback = target.alertname or f"Opened from {target.panel or target.source}"
    return store.NewIncident(
        title=str(given.get("title") or fallback),
        severity=str(given.get("severity") or DEFAULT_SEVERITY),
        team=str(given.get("team") or ctx.incidents.settings.default_team),
        services=list(given.get("services") or []),
        started_at=ctx.now,
        summary=ctx.reason,
        alertname=target.alertname,
    )


def severities(incidents: Incidents) -> tuple[str, ...]:
    return SEVERITIES


def teams(incidents: Incidents) -> tuple[str, ...]:
    """The teams of the running API's on-call file."""
    return tuple(t.id for t in incidents.oncall.teams)


CREATE_INPUTS = (
    Input("title", "Title", "what is wrong (default: the alert, or the panel clicked)"),
    Input(
        "severity", "Severity", f"critical, high or medium (default {DEFAULT_SEVERITY})", severities
    ),
    Input("team", "Team", "the on-call team (default: incidents.default_team)", teams),
    Input("services", "Affected services", "comma-separated names", many=True, max_length=100),
)
