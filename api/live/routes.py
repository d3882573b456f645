"""The live lists' HTTP face: a Server-Sent Events stream and a polling endpoint per list,
and the script the list pages run.

``GET /api/v1/<list>/live`` takes the list's own filters (a parameter it does not know is a
400 naming it, as on the page) and streams ``rows`` events: the rows, masked as the page
masks them for this viewer, that match the filters and changed since the cursor. Each
event's id is the cursor after it; a browser reconnecting sends it back as
``Last-Event-ID`` and the stream resumes exactly there (or ``after=<cursor>`` for the first
connection: the page's). ``cursor`` events move the id on when nothing matched for
``live.heartbeat_seconds``; ``reset`` says the cursor is too old to catch up (reload the
page); ``end`` says why the stream ends for good (the session ended or lost the list's
permission). A client that does not accept ``text/event-stream`` gets the events up to now
and the end of the response.

``GET /api/v1/<list>/changes?after=<cursor>`` answers one poll with the same rows and the
next cursor: the script's fallback where EventSource fails.

Each stream takes a slot of its person (:mod:`api.live.slots`) and re-checks, every
``api.session_recheck_seconds``, that its credential still holds and still grants the list:
a revoked or expired session ends its streams within that time.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Hashable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from api.auth.principal import Principal, authenticate
from api.display import moments
from api.display.cells import cells
from api.display.viewer import zone_name
from api.drilldowns import render as records
from api.drilldowns.params import parse_list, single
from api.drilldowns.spec import ListView
from api.drilldowns.views import grants_of, list_params, masker
from api.live.cursors import decode, encode
from api.live.feeds import FEEDS, Feed, NotLive, Predicate
from api.live.hub import Event, Hub, Render, Reset, Unavailable, Viewer
from api.live.slots import Slot, acquire
from api.pii import Masker
from api.problems import Problem
from api.routing import Param, RouteSpec, principal_of, runtime_of
from api.runtime import Runtime
from core import assets

SCRIPT = assets.api_static() / "live.js"
EVENT_STREAM = "text/event-stream"
RETRY_MILLISECONDS = 2000
AFTER = Param("after", {"type": "string", "maxLength": 17}, "cursor: a live event id or poll's")
ROW_SCHEMA = {
    "type": "object",
    "required": ["key", "cells", "record"],
    "properties": {
        "key": {"type": "string"},
        "cells": {"type": "array", "items": {"type": "object"}},
        "record": {"type": "object"},
    },
}
EVENT_SCHEMA = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["rows", "cursor", "reset", "end"]},
        "data": {"type": "string"},  # JSON: {"cursor", "rows"}, {"cursor"} or {"reason"}
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}
CHANGES_SCHEMA = {
    "type": "object",
    "required": ["cursor", "rows", "reset"],
    "properties": {
        "cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "rows": {"type": "array", "items": ROW_SCHEMA},
        "reset": {"type": "boolean"},
    },
}


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.live
    return hub


def renderer(runtime: Runtime, feed: Feed, grants: frozenset[str], zone: ZoneInfo) -> Render:
    """Rows as the page shows them to a viewer with these unmask grants in this time zone:
    masked, as cells (text, link and badge, as the page's own) and as the JSON record."""
    view = feed.view
    subject = view.subject
    maskers: dict[tuple[str, ...], Masker] = {}

    def render(names: Any, rows: Any) -> list[dict[str, Any]]:
        shape = tuple(names)
        if shape not in maskers:
            given = {subject.type: grants} if subject else {}
            maskers[shape] = masker(runtime, view.pii, subject, shape, given)
        mask = maskers[shape]
        out = []
        for row in rows:
            shown = mask.apply(row)
            out.append(
                {
                    "key": feed.key(shape, row),
                    "cells": cells(view.fields, shape, shown, zone),
                    "record": records.record(view.fields, shape, shown),
                }
            )
        return out

    return render


async def _viewing(request: Request, feed: Feed) -> tuple[Predicate, Hashable, Render]:
    """The request's filters as a row test, and how its rows render for this principal."""
    runtime = runtime_of(request)
    params = parse_list(request, feed.view, runtime, paged=False)
    try:
        matches = feed.predicate(params.filters, open_ended=single(request, "to") in (None, "now"))
    except NotLive as exc:
        raise Problem(400, str(exc), invalid_params=[(exc.name, exc.why)]) from None
    principal = principal_of(request)
    grants = await _grants(runtime, principal, feed.view)
    zone = moments.zone(await zone_name(runtime, principal))
    return matches, (feed.name, grants, zone.key), renderer(runtime, feed, grants, zone)


async def _grants(runtime: Runtime, principal: Principal, view: ListView) -> frozenset[str]:
    if view.subject is None:
        return frozenset()
    return (await grants_of(runtime, principal)).get(view.subject.type, frozenset())


def _start(request: Request) -> datetime | None:
    last = request.headers.get("last-event-id")
    if last:
        return decode("Last-Event-ID", last.strip())
    after = single(request, "after")
    return decode("after", after) if after else None


def _message(kind: str, cursor: datetime | None, data: dict[str, Any]) -> bytes:
    head = f"id: {encode(cursor)}\n" if cursor is not None else ""
    body = json.dumps(data, separators=(",", ":"))
    return f"{head}event: {kind}\ndata: {body}\n\n".encode()


def _rows_message(event: Event) -> bytes:
    """The event as SSE, encoded once however many viewers it goes to."""
    if "sse" not in event.encoded:
        cursor = encode(event.cursor)
        if event.rows:
            data = {"cursor": cursor, "rows": event.rows}
            event.encoded["sse"] = _message("rows", event.cursor, data)
        else:
            event.encoded["sse"] = _message("cursor", event.cursor, {"cursor": cursor})
    return event.encoded["sse"]


def changes(feed: Feed) -> Any:
    async def endpoint(request: Request) -> Response:
        matches, _, render = await _viewing(request, feed)
        try:
            event = await _hub(request).changes(feed.name, _start(request), matches, render)
        except Reset:
            return JSONResponse({"cursor": None, "rows": [], "reset": True})
        except Unavailable as exc:
            raise Problem(503, str(exc), headers={"Retry-After": "5"}) from None
        return JSONResponse({"cursor": encode(event.cursor), "rows": event.rows, "reset": False})

    return endpoint


def stream(feed: Feed) -> Any:
    async def endpoint(request: Request) -> Response:
        matches, group, render = await _viewing(request, feed)
        start = _start(request)
        runtime = runtime_of(request)
        slot = await acquire(runtime.redis, runtime.settings.live, principal_of(request))
        try:
            viewer = await _hub(request).subscribe(feed.name, start, matches, group, render)
        except Reset as exc:
            await slot.release()
            return _finite(_message("reset", None, {"reason": str(exc)}))
        except Unavailable as exc:
            await slot.release()
            raise Problem(503, str(exc), headers={"Retry-After": "5"}) from None
        except BaseException:
            await slot.release()
            raise
        follow = EVENT_STREAM in request.headers.get("accept", "")
        body = _events(request, feed, viewer, slot, follow=follow)
        return StreamingResponse(body, media_type=EVENT_STREAM, headers=_STREAM_HEADERS)

    return endpoint


_STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def _finite(message: bytes) -> Response:
    return Response(message, media_type=EVENT_STREAM, headers=_STREAM_HEADERS)


async def _events(
    request: Request, feed: Feed, viewer: Viewer, slot: Slot, *, follow: bool
) -> AsyncIterator[bytes]:
    """The stream: the backlog, then each event as it comes, until the client goes, the
    hub ends the viewer, or the credential stops holding."""
    hub = _hub(request)
    settings = runtime_of(request).settings
    recheck = max(settings.api.session_recheck_seconds, 0.5)
    heartbeat = settings.live.heartbeat_seconds
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
        yield _rows_message(viewer.queue.get_nowait())
        if not follow:
            while not viewer.queue.empty():
                yield _rows_message(viewer.queue.get_nowait())
            return
        # Spread over the interval, so that streams opened together (a restart's
        # reconnections) do not all re-check their sessions at once.
        next_check = time.monotonic() + recheck * random.uniform(0.5, 1.0)
        last_sent = time.monotonic()
        while True:
            wait = max(0.0, min(next_check, last_sent + heartbeat) - time.monotonic())
            event = await _next(viewer, wait)
            if viewer.ended is not None:
                return  # the browser reconnects and resumes from its last event id
            if time.monotonic() >= next_check:
                why = await _recheck(request, feed, viewer, slot)
                if why is not None:
                    yield _message("end", None, {"reason": why})
                    return
                next_check = time.monotonic() + recheck
            if event is not None and event.rows:
                yield _rows_message(event)
                last_sent = time.monotonic()
            elif time.monotonic() >= last_sent + heartbeat:
                yield _message("cursor", viewer.after, {"cursor": encode(viewer.after)})
                last_sent = time.monotonic()
    finally:
        with anyio.CancelScope(shield=True):
            hub.unsubscribe(viewer)
            await slot.release()


async def _next(viewer: Viewer, wait: float) -> Event | None:
    try:
        return await asyncio.wait_for(viewer.queue.get(), wait)
    except TimeoutError:
        return None


async def _recheck(request: Request, feed: Feed, viewer: Viewer, slot: Slot) -> str | None:
    """Why the stream must end now, or None: the credential is checked again as on every
    request, the viewer's unmask grants are read again, and the slot renewed."""
    runtime = runtime_of(request)
    try:
        principal = await authenticate(runtime, request)
    except Problem as problem:
        return problem.detail
    if principal is None:
        return "the session ended; sign in again"
    if not principal.can(feed.view.permission):
        return f"role {principal.role} does not hold {feed.view.permission}"
    grants = await _grants(runtime, principal, feed.view)
    zone = moments.zone(await zone_name(runtime, principal))
    if viewer.group != (feed.name, grants, zone.key):
        viewer.group = (feed.name, grants, zone.key)
        viewer.render = renderer(runtime, feed, grants, zone)
    await slot.renew()
    return None


async def script(request: Request) -> Response:
    return Response(SCRIPT.read_bytes(), media_type="text/javascript")


def _params(view: ListView) -> tuple[Param, ...]:
    own = tuple(p for p in list_params(view, paged=True) if p.name not in ("limit", "cursor"))
    return (*own, AFTER)


def routes() -> list[RouteSpec]:
    specs = [
        RouteSpec(
            "/static/live.js",
            "live_script",
            script,
            None,
            "text",
            "The list pages' live updates (EventSource, polling fallback)",
            tags=("system",),
            media_type="text/javascript",
        )
    ]
    for feed in FEEDS.values():
        view = feed.view
        specs += [
            RouteSpec(
                f"/api/v1/{view.name}/live",
                f"{view.name}_live",
                stream(feed),
                view.permission,
                "text",
                f"{view.title}: new and changed rows as Server-Sent Events",
                params=_params(view),
                schema=EVENT_SCHEMA,
                tags=(view.name,),
                media_type=EVENT_STREAM,
                errors={429: "the person's live streams are at live.streams_per_user"},
            ),
            RouteSpec(
                f"/api/v1/{view.name}/changes",
                f"{view.name}_changes",
                changes(feed),
                view.permission,
                "json",
                f"{view.title}: rows changed since a cursor (polling)",
                params=_params(view),
                schema=CHANGES_SCHEMA,
                tags=(view.name,),
            ),
        ]
    return specs
