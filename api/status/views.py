"""The public status page (``/status``, and ``/api/v1/status`` as JSON): no sign-in, public
words only, cacheable for a few seconds; and the operators' change that rewords a notice."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.confirmed_changes import Change, Done, Edit, Input, Proposal, change_routes
from api.drilldowns.render import jsonable
from api.incidents.context import incidents_of
from api.pages import render
from api.problems import Problem, invalid
from api.routing import Param, RouteSpec, runtime_of
from api.status import components, notices

MANAGE = "status_notices.manage"
TAGS = ("status",)
# private: every anonymous response carries the pre-login CSRF cookie, which a shared cache
# must not hand to others.
CACHE = {"Cache-Control": "private, max-age=15"}
RESOLVED_DAYS = 7  # resolved notices stay on the page this long
OVERALL = {
    components.OPERATIONAL: "All systems operational",
    components.OUTAGE: "Some systems are down",
    components.UNKNOWN: "Some systems' status is unknown",
}
_TEXT = {"type": "string"}
_WHEN = {"type": "string", "format": "date-time"}
_MAYBE_WHEN = {"anyOf": [_WHEN, {"type": "null"}]}
STATUS_SCHEMA = {
    "type": "object",
    "required": ["status", "components", "notices"],
    "properties": {
        "status": {
            "type": "object",
            "required": ["indicator", "description"],
            "properties": {"indicator": _TEXT, "description": _TEXT},
        },
        "components": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "name", "status", "checked_at"],
                "properties": {
                    "id": _TEXT,
                    "name": _TEXT,
                    "status": {"type": "string", "enum": list(components.STATE_LABELS)},
                    "checked_at": _MAYBE_WHEN,
                },
            },
        },
        "notices": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "component", "title", "status", "opened_at", "updates"],
                "properties": {
                    "id": {"type": "integer"},
                    "component": _TEXT,
                    "title": _TEXT,
                    "status": _TEXT,
                    "opened_at": _WHEN,
                    "updated_at": _WHEN,
                    "resolved_at": _MAYBE_WHEN,
                    "updates": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
    },
}


async def _status(request: Request) -> dict[str, Any]:
    runtime = runtime_of(request)
    stale = runtime.settings.thresholds.service_check_stale_seconds
    async with runtime.platform.connection() as conn:
        states = await components.states(conn, stale)
    async with runtime.ops.connection() as conn:
        shown = await notices.public(conn, incidents_of(request).clock(), RESOLVED_DAYS)
    worst = {c["status"] for c in states}
    overall = next(
        (s for s in (components.OUTAGE, components.UNKNOWN) if s in worst), components.OPERATIONAL
    )
    return {
        "status": {"indicator": overall, "description": OVERALL[overall]},
        "components": states,
        "notices": shown,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return jsonable(value)


async def status_json(request: Request) -> Response:
    return JSONResponse(_jsonable(await _status(request)), headers=CACHE)


async def status_page(request: Request) -> Response:
    context = {
        **await _status(request),
        "state_labels": components.STATE_LABELS,
        "notice_labels": notices.STATUS_LABELS,
    }
    response = render(request, "status.html", context)
    response.headers.update(CACHE)
    return response


def _notice_id(request: Request) -> int:
    raw = str(request.path_params["id"])
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise invalid("id", "a status notice id")
    return int(raw)


async def propose_wording(request: Request) -> Proposal:
    notice = _notice_id(request)
    async with runtime_of(request).ops.connection() as conn:
        found = await notices.get(conn, notice)
        latest = await notices.latest_message(conn, notice)
    if found is None:
        raise Problem(404, f"no status notice {notice}")
    return Proposal(
        f"Reword the public notice #{notice} on /status ({found['status']}): customers read "
        "these words; name no alert, host, team or person.",
        (
            Input("title", "Public title", str(found["title"]), 200),
            Input("message", "Latest public update", str(latest), 2000, multiline=True),
        ),
    )


async def apply_wording(edit: Edit) -> Done:
    notice = _notice_id(edit.request)
    title, message = edit.values["title"], edit.values["message"]
    async with edit.runtime.ops.connection() as conn, conn.transaction():
        await notices.edit(conn, notice, title, message, edit.actor, edit.now)
    result = {"notice": notice, "title": title, "message": message}
    return Done(f"status notice #{notice} reworded", result, "/status")


WORDING = Change(
    "status-notice-wording",
    "Reword public notice",
    "status_notice",
    lambda request: str(_notice_id(request)),
    propose_wording,
    apply_wording,
)
ID = Param("id", {"type": "integer", "minimum": 1}, "status notice id", "path", required=True)


def routes() -> list[RouteSpec]:
    wording = "/status/notices/{id}/wording"
    return [
        RouteSpec(
            "/status",
            "status_page",
            status_page,
            None,
            "html",
            "The public status page: components and incident notices (no sign-in)",
            tags=TAGS,
        ),
        RouteSpec(
            "/api/v1/status",
            "status",
            status_json,
            None,
            "json",
            "The public status: components and incident notices (no sign-in)",
            schema=STATUS_SCHEMA,
            tags=TAGS,
        ),
        *change_routes(
            WORDING,
            wording,
            "status_notice_wording",
            MANAGE,
            (ID,),
            TAGS,
            "the current words, to edit",
            {404: "no such status notice"},
            {404: "no such status notice"},
        ),
    ]
