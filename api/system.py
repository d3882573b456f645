"""Public plumbing: liveness, readiness, metrics, the OpenAPI document, the stylesheet and
the pages' script."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from api.incidents.metrics import OpenIncidents
from api.openapi import build_document
from api.problems import Problem
from api.routing import RouteSpec, runtime_of
from core import assets

log = logging.getLogger(__name__)
STYLESHEET = assets.api_static() / "app.css"
RANGE_SCRIPT = assets.api_static() / "range.js"
READY_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _check(name: str, probe: object) -> str | None:
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT_SECONDS)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported by name
        log.warning("readiness: %s unavailable: %s", name, exc)
        return name
    return None


async def _query(pool: object) -> None:
    async with pool.connection() as conn:  # type: ignore[attr-defined]
        await conn.execute("SELECT 1")


async def readyz(request: Request) -> Response:
    runtime = runtime_of(request)
    failed = [
        name
        for name in await asyncio.gather(
            _check("platform database", _query(runtime.platform)),
            _check("ops database", _query(runtime.ops)),
            _check("redis", runtime.redis.ping()),
        )
        if name
    ]
    if failed:
        raise Problem(503, f"not ready: {', '.join(failed)} unavailable")
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    """One page rendered by prometheus_client; it never queries a database, so it answers
    during an outage (the open incidents are the last counts read)."""
    runtime = runtime_of(request)
    open_incidents: OpenIncidents = request.app.state.open_incidents
    await open_incidents.settled()
    return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def openapi(request: Request) -> Response:
    return JSONResponse(build_document(request.app.state.specs))


async def stylesheet(request: Request) -> Response:
    return FileResponse(STYLESHEET, media_type="text/css")


async def range_script(request: Request) -> Response:
    return FileResponse(RANGE_SCRIPT, media_type="text/javascript")


STATUS_SCHEMA = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}},
}

ROUTES = (
    RouteSpec(
        "/healthz",
        "healthz",
        healthz,
        None,
        "json",
        "Liveness",
        schema=STATUS_SCHEMA,
        tags=("system",),
    ),
    RouteSpec(
        "/readyz",
        "readyz",
        readyz,
        None,
        "json",
        "Readiness: databases and Redis answer",
        schema=STATUS_SCHEMA,
        tags=("system",),
    ),
    RouteSpec(
        "/metrics",
        "metrics",
        metrics,
        None,
        "text",
        "Prometheus metrics of the API",
        tags=("system",),
        media_type="text/plain",
    ),
    RouteSpec(
        "/openapi.json",
        "openapi",
        openapi,
        None,
        "json",
        "This document",
        schema={"type": "object"},
        tags=("system",),
    ),
    RouteSpec(
        "/static/app.css",
        "stylesheet",
        stylesheet,
        None,
        "text",
        "Stylesheet",
        tags=("system",),
        media_type="text/css",
    ),
    RouteSpec(
        "/static/range.js",
        "range_script",
        range_script,
        None,
        "text",
        "The list pages' time range control (an enhancement: the pages work without it)",
        tags=("system",),
        media_type="text/javascript",
    ),
)
