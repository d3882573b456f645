"""A webhook endpoint's page: its settings, signing secrets and policies (its own retry
schedule and rate limit, or the global ones), the forms that change them for those holding
``webhooks.manage``, and beside them its delivery log, newest first, each delivery linked to
its own page (attempts and payload). Its JSON is the drilldown's
(``/api/v1/webhook-endpoints/{id}``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.drilldowns.views import detail_routes
from api.pages import render
from api.problems import Problem, invalid
from api.queries import webhooks as sql
from api.routing import Param, RouteSpec, runtime_of
from api.webhooks import endpoint_form as form
from api.webhooks.drilldowns import ENDPOINT_DETAIL, READ
from api.webhooks.endpoint_changes import ID, MANAGE, endpoint_id
from gateway import endpoints

LOG_PAGE = 50
BEFORE = Param(
    "before", {"type": "integer", "minimum": 1}, "older deliveries: those before this delivery id"
)
ALL_DELIVERIES = "/webhooks?direction=outbound&endpoint_id={id}&from=now-30d"


def _before(request: Request) -> int | None:
    raw = request.query_params.get("before")
    if raw is None:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise invalid("before", "a delivery id")
    return int(raw)


async def _log(request: Request, found: int) -> dict[str, Any]:
    params = {"id": found, "before": _before(request), "limit": LOG_PAGE}
    async with runtime_of(request).ops.connection() as conn:
        record = await endpoints.get(conn, found)
        if record is None:
            raise Problem(404, f"no webhook endpoint {found}")
        cursor = await conn.execute(sql.ENDPOINT_LOG, params)
        names = [c.name for c in cursor.description or ()]
        rows = [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]
        counts = await (await conn.execute(sql.ENDPOINT_COUNTS, {"id": found})).fetchall()
    return {
        "endpoint": record,
        "deliveries": rows,
        "counts": {str(status): int(count) for status, count in counts},
        "older": rows[-1]["id"] if len(rows) == LOG_PAGE else None,
    }


async def endpoint_page(request: Request) -> Response:
    found = endpoint_id(request)
    hooks = runtime_of(request).settings.webhooks
    context = await _log(request, found)
    context |= {
        "form": form.text_of(context["endpoint"]),
        "global_schedule": form.global_schedule(hooks),
        "default_rate": hooks.default_rate_limit_per_second,
        "grace_hours": hooks.secret_grace_seconds / 3600,
        "manage": MANAGE,
        "all_deliveries": ALL_DELIVERIES.format(id=found),
    }
    return render(request, "webhook_endpoint.html", context)


def routes() -> list[RouteSpec]:
    """The drilldown's JSON, and the page."""
    json_routes = [spec for spec in detail_routes(ENDPOINT_DETAIL) if spec.kind == "json"]
    page = RouteSpec(
        ENDPOINT_DETAIL.path,
        f"{ENDPOINT_DETAIL.name}_detail_page",
        endpoint_page,
        READ,
        "html",
        "Webhook endpoint (page for people): settings, policies, forms and delivery log",
        params=(ID, BEFORE),
        tags=(ENDPOINT_DETAIL.name,),
        errors={404: "no such webhook endpoint"},
    )
    return [*json_routes, page]
