"""The incident page (``/incidents/{id}``, and its JSON at ``/api/v1/incidents/{id}``):
the incident, the buttons that run it (each opens its action's confirmation page), and
its whole timeline in order: alerts firing and resolved, escalation steps fired (who was
notified, by which transport, and how it went) and still planned (who they will page),
every action with its actor and reason, and the notes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.incidents import escalation
from api.incidents.actions.catalog import BY_NAME, INCIDENTS
from api.incidents.context import Incidents, incidents_of
from api.incidents.queries import timeline as sql
from api.pages import render
from api.problems import Problem
from api.routing import Param, RouteSpec, principal_of, runtime_of

PERMISSION = "incidents.read"
# The actions each status offers, in the order of the page's buttons.
BUTTONS = {
    "triggered": ("acknowledge", "resolve", "reassign", "set-severity", "add-note"),
    "acknowledged": ("resolve", "reassign", "set-severity", "add-note"),
    "resolved": ("reopen", "add-note"),
}
KEY = Param("id", {"type": "integer", "minimum": 1}, "incident id", location="path", required=True)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _who(incidents: Incidents, team: str, level: int, at: datetime) -> list[str]:
    oncall = incidents.oncall
    try:
        users = escalation.paged_at(oncall, team, level, at)
    except (StopIteration, IndexError):  # a team or level the on-call file no longer has
        return []
    return [oncall.user(u).name for u in users]


def _sent(notified: list[Mapping[str, Any]]) -> str:
    parts = [f"{n['transport']} {n['recipient']} ({n['status']})" for n in notified]
    return ", ".join(parts) or "nobody"


def _because(detail: Mapping[str, Any]) -> str:
    return f": {detail['reason']}" if detail.get("reason") else ""


def describe(kind: str, actor: str, detail: Mapping[str, Any]) -> str:
    """One line of the timeline, for people."""
    d = detail
    lines = {
        "opened": f"Opened by {actor} ({d.get('source', '')})",
        "alert_firing": f"Alert {d.get('alertname')} firing",
        "alert_resolved": f"Alert {d.get('alertname')} resolved",
        "acknowledged": f"Acknowledged by {actor} via {d.get('via')}{_because(d)}",
        "resolved": f"Resolved by {actor}{_because(d)}",
        "reopened": f"Reopened by {actor}{_because(d)}",
        "note": f"Note by {actor}: {d.get('text')}",
        "replanned": f"Escalation planned again for team {d.get('team')} ({d.get('steps')} steps)",
        "action": f"{d.get('action')} by {actor}: {d.get('outcome')}{_because(d)}",
        "notification": f"{d.get('transport')} {d.get('kind')} to {d.get('recipient')}: "
        f"{d.get('status')}" + (f" ({d['error']})" if d.get("error") else ""),
    }
    if kind == "reassigned":
        owner, team = d.get("owner", {}), d.get("team", {})
        return (
            f"Reassigned by {actor}: owner {owner.get('from') or '-'} → {owner.get('to') or '-'},"
            f" team {team.get('from')} → {team.get('to')}{_because(d)}"
        )
    if kind == "severity":
        change = d.get("severity", {})
        return f"Severity {change.get('from')} → {change.get('to')} by {actor}{_because(d)}"
    if kind in ("escalation_fired", "escalation_planned"):
        step = f"Escalation level {d.get('level', 0) + 1}, round {d.get('round', 0) + 1}"
        if kind == "escalation_planned":
            return f"{step} planned: will page {', '.join(d.get('will_page', [])) or 'nobody'}"
        return f"{step} fired: notified {_sent(d.get('notified', []))}"
    return lines.get(kind, f"{kind} by {actor}")


async def load(request: Request, incident: int) -> dict[str, Any]:
    """The incident, its timeline and the actions the caller may take on it."""
    incidents = incidents_of(request)
    async with runtime_of(request).ops.connection() as conn:
        cursor = await conn.execute(sql.INCIDENT, {"incident": incident})
        row = await cursor.fetchone()
        if row is None:
            raise Problem(404, f"no incident {incident}")
        names = [c.name for c in cursor.description or ()]
        entries = await (await conn.execute(sql.ENTRIES, {"incident": incident})).fetchall()
    found = dict(zip(names, row, strict=True))
    team = found["team"] or incidents.settings.default_team
    timeline = []
    for at, kind, actor, recorded in entries:
        detail = dict(recorded)
        if kind == "escalation_planned":
            detail["will_page"] = _who(incidents, team, int(detail["level"]), at)
        timeline.append(
            {
                "at": at.isoformat(),
                "kind": kind,
                "actor": actor,
                "text": describe(kind, actor, detail),
                "detail": detail,
            }
        )
    allowed = principal_of(request).can(INCIDENTS)
    actions = [
        {
            "name": name,
            "title": BY_NAME[name].title,
            "href": f"/actions/{name}?incident={incident}&source=incident-page",
        }
        for name in (BUTTONS.get(found["status"], ()) if allowed else ())
    ]
    incident_view = {k: _plain(v) for k, v in found.items()}
    return {"incident": incident_view, "timeline": timeline, "actions": actions}


def _key(request: Request) -> int:
    raw = str(request.path_params["id"])
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise Problem(404, f"no incident {raw}")
    return int(raw)


async def incident_json(request: Request) -> Response:
    return JSONResponse(await load(request, _key(request)))


async def incident_page(request: Request) -> Response:
    return render(request, "incident.html", await load(request, _key(request)))


ENTRY_SCHEMA = {
    "type": "object",
    "required": ["at", "kind", "actor", "text", "detail"],
    "properties": {
        "at": {"type": "string", "format": "date-time"},
        "kind": {"type": "string"},
        "actor": {"type": "string"},
        "text": {"type": "string"},
        "detail": {"type": "object"},
    },
}
SCHEMA = {
    "type": "object",
    "required": ["incident", "timeline", "actions"],
    "properties": {
        "incident": {"type": "object"},
        "timeline": {"type": "array", "items": ENTRY_SCHEMA},
        "actions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "title", "href"],
                "properties": {
                    "name": {"type": "string"},
                    "title": {"type": "string"},
                    "href": {"type": "string"},
                },
            },
        },
    },
}

ROUTES = (
    RouteSpec(
        "/api/v1/incidents/{id}",
        "incident_detail",
        incident_json,
        PERMISSION,
        "json",
        "Incident: the incident, its whole timeline, and the actions the caller may take",
        params=(KEY,),
        schema=SCHEMA,
        tags=("incident",),
    ),
    RouteSpec(
        "/incidents/{id}",
        "incident_detail_page",
        incident_page,
        PERMISSION,
        "html",
        "Incident (page for people): its timeline and the buttons that run it",
        params=(KEY,),
        tags=("incident",),
    ),
)
