"""A person's preferences page (``/preferences``): the time zone every page shows times in.

Changing it is a CSRF-protected form, refused with a 400 naming a zone Python's
``zoneinfo`` does not list, and written to the audit log with the zone before and after.
It belongs to the person, whatever credential they use: a key acts for its owner.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.display import moments, viewer
from api.pages import render
from api.problems import Problem, invalid
from api.queries import preferences as sql
from api.routing import RouteSpec, audit_entry, principal_of, runtime_of
from core.audit import record_in

FORM = "application/x-www-form-urlencoded"
MAX_ZONE_CHARS = 64


def _person(request: Request) -> int:
    person = principal_of(request).person
    if person is None:
        raise Problem(403, "preferences belong to a person; this credential names none")
    return person


async def page(request: Request) -> Response:
    runtime, principal = runtime_of(request), principal_of(request)
    current = await viewer.zone_name(runtime, principal)
    context: dict[str, Any] = {
        "current_zone": current,
        "zones": sorted(moments.available()),
        "now_there": moments.format_moment(datetime.now(UTC), moments.zone(current)),
        "personal": principal.person is not None,
    }
    return render(request, "preferences.html", context)


def wanted_zone(value: Any) -> str:
    """The zone a form asks for, if ``zoneinfo`` lists it; else a 400 naming it."""
    if not isinstance(value, str) or not value.strip():
        raise invalid("time_zone", "required: an IANA time zone name like Europe/Berlin")
    name = value.strip()
    if len(name) > MAX_ZONE_CHARS or not moments.known(name):
        raise invalid("time_zone", f"unknown time zone {name[:MAX_ZONE_CHARS]!r}")
    return name


async def save(request: Request) -> Response:
    runtime, person = runtime_of(request), _person(request)
    form = await request.form()
    unknown = sorted(set(form) - {"time_zone", "csrf_token"})
    if unknown:
        raise invalid(unknown[0], "not a field of the preferences form; it takes time_zone")
    zone = wanted_zone(form.get("time_zone"))
    async with runtime.ops.connection() as conn, conn.transaction():
        row = await (await conn.execute(sql.SET_TIME_ZONE, {"id": person, "zone": zone})).fetchone()
        if row is None:
            raise Problem(404, "the signed-in user no longer exists")
        entry = audit_entry(
            request,
            "preferences.time_zone",
            target_type="user",
            target_id=str(person),
            details={"from": row[0], "to": zone},
        )
        await record_in(conn, entry)
    return RedirectResponse("/preferences", status_code=303)


FORM_BODY = {
    FORM: {
        "type": "object",
        "required": ["time_zone", "csrf_token"],
        "properties": {
            "time_zone": {"type": "string", "maxLength": MAX_ZONE_CHARS},
            "csrf_token": {"type": "string"},
        },
    }
}

ROUTES = (
    RouteSpec(
        "/preferences",
        "preferences",
        page,
        "signed_in",
        "html",
        "Your preferences: the time zone pages show times in",
        tags=("preferences",),
    ),
    RouteSpec(
        "/preferences",
        "preferences_save",
        save,
        "signed_in",
        "form",
        "Change your time zone (audited)",
        methods=("POST",),
        body=FORM_BODY,
        tags=("preferences",),
        errors={400: "an unknown time zone, named"},
    ),
)
