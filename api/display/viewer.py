"""Whose eyes a page is for: the time zone of the person signed in (``ops.users.time_zone``),
read once per page. A page nobody is signed in to, and an API key's JSON, use UTC."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.requests import Request

from api.auth.principal import Principal
from api.display import moments
from api.queries import preferences as sql
from api.runtime import Runtime


async def zone_name(runtime: Runtime, principal: Principal) -> str:
    """The person's zone as stored; UTC when the principal is no person."""
    person = principal.person
    if person is None:
        return moments.DEFAULT_ZONE
    async with runtime.ops.connection() as conn:
        row = await (await conn.execute(sql.TIME_ZONE, {"id": person})).fetchone()
    return str(row[0]) if row else moments.DEFAULT_ZONE


async def remember(request: Request, runtime: Runtime, principal: Principal) -> None:
    """Keep the viewer's zone on the request for the page about to be rendered."""
    request.state.time_zone = moments.zone(await zone_name(runtime, principal))


def zone_of(request: Request) -> ZoneInfo:
    found = request.scope.get("state", {}).get("time_zone")
    return found if isinstance(found, ZoneInfo) else moments.zone(None)
