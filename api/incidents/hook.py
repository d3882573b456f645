"""``POST /hooks/alertmanager``: Alertmanager's webhook (version 4), behind a bearer token,
opens, updates and resolves incidents."""

from __future__ import annotations

import hmac

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.incidents import store
from api.incidents.alertmanager import Notification
from api.incidents.context import incidents_of
from api.problems import Problem
from api.routing import RouteSpec, runtime_of
from core import json_depth

PATH = "/hooks/alertmanager"


def _authorize(request: Request, expected: str | None) -> None:
    if not expected:  # an empty token would let "Bearer " through
        raise Problem(401, "the hook is disabled: incidents.alertmanager_token is not set")
    offered = request.headers.get("authorization", "")
    if not hmac.compare_digest(offered.encode(), f"Bearer {expected}".encode()):
        raise Problem(
            401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )


async def _notification(request: Request) -> Notification:
    try:
        return Notification.model_validate(json_depth.loads(await request.body()))
    except json_depth.JsonTooDeep as exc:
        raise Problem(400, f"the body is {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else None
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors or [])
        raise Problem(422, f"not an Alertmanager v4 notification: {detail or exc}") from None


async def alertmanager_hook(request: Request) -> Response:
    incidents = incidents_of(request)
    token = incidents.settings.alertmanager_token
    _authorize(request, token.get_secret_value() if token else None)
    note = await _notification(request)
    async with runtime_of(request).ops.connection() as conn:
        applied = await store.apply_notification(
            conn, note, incidents.clock(), incidents.oncall, incidents.settings
        )
    body = {"incident": applied.incident, "opened": applied.opened, "resolved": applied.resolved}
    return JSONResponse(body)


ROUTES = (
    RouteSpec(
        PATH,
        "alertmanager_hook",
        alertmanager_hook,
        None,
        "json",
        "Alertmanager webhook (v4): opens, updates and resolves incidents (bearer token)",
        methods=("POST",),
        body={"application/json": {"type": "object"}},
        tags=("incidents",),
        errors={
            401: "no valid bearer token (or the hook is disabled)",
            422: "not an Alertmanager v4 notification",
        },
        schema={
            "type": "object",
            "required": ["incident", "opened", "resolved"],
            "properties": {
                "incident": {"type": ["integer", "null"]},
                "opened": {"type": "boolean"},
                "resolved": {"type": "boolean"},
            },
        },
    ),
)
