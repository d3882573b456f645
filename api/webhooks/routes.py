"""The gateway's management routes: endpoints (create, change, delete, rotate the secret,
send a test), replays, recovery, and "Reprocess dead letters"; and, for people, the
endpoints' pages and forms (:mod:`api.webhooks.endpoint_page`,
:mod:`api.webhooks.endpoint_changes`). Every change needs
``webhooks.manage`` and writes its audit entry in the change's own transaction
(:func:`core.audit.record_in`): both are committed, or neither.

:func:`webhook_routes` is what ``api/app.py`` adds to the route table (with the inbound PSP
routes); the drilldowns live in :mod:`api.webhooks.drilldowns`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.problems import Problem, invalid
from api.routing import (
    Param,
    RouteSpec,
    audit_entry,
    json_object,
    media_type_of,
    principal_of,
    runtime_of,
)
from api.timerange import parse_range
from api.webhooks import endpoint_changes, endpoint_page, inbound
from core.audit import AuditEntry, record_in
from gateway import endpoints, replay
from gateway.endpoints import InvalidEndpoint

MANAGE = "webhooks.manage"
INBOUND_PREFIX = "/webhooks/inbound/"
TAGS = ("webhooks",)
ID = Param("id", {"type": "integer", "minimum": 1}, location="path", required=True)


async def _json(request: Request) -> dict[str, Any]:
    if media_type_of(request) != "application/json":
        raise Problem(415, "send application/json")
    return await json_object(request)


def _id(request: Request) -> int:
    raw = request.path_params["id"]
    if not str(raw).isdigit() or not 0 < int(raw) < 2**63:
        raise invalid("id", "a positive integer")
    return int(raw)


def _entry(
    request: Request, action: str, target: str | None, details: Mapping[str, Any]
) -> AuditEntry:
    return audit_entry(
        request,
        action,
        target_type="webhook_endpoint" if target else None,
        target_id=target,
        details=details,
    )


def _jsonable(record: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(record, default=str))  # type: ignore[no-any-return]


def _bad(exc: InvalidEndpoint) -> Problem:
    return invalid(exc.field, exc.reason)


async def create_endpoint(request: Request) -> Response:
    runtime = runtime_of(request)
    try:
        spec = endpoints.spec_from(await _json(request), runtime.settings.webhooks)
        await endpoints.check_reachable(spec.url, runtime.settings.webhooks)
    except InvalidEndpoint as exc:
        raise _bad(exc) from None
    async with runtime.ops.connection() as conn, conn.transaction():
        created, secret = await endpoints.create_async(conn, spec, runtime.secret_box)
        target = str(created["id"])
        await record_in(
            conn, _entry(request, "webhooks.endpoint.create", target, {"url": spec.url})
        )
        found = await endpoints.get(conn, int(created["id"]))
    assert found is not None
    return JSONResponse({**_jsonable(found), "secret": secret}, status_code=201)


async def update_endpoint(request: Request) -> Response:
    runtime = runtime_of(request)
    endpoint_id = _id(request)
    try:
        fields = endpoints.checked(await _json(request), runtime.settings.webhooks, partial=True)
        if "url" in fields:
            await endpoints.check_reachable(fields["url"], runtime.settings.webhooks)
    except InvalidEndpoint as exc:
        raise _bad(exc) from None
    async with runtime.ops.connection() as conn:
        if fields.get("enabled") is False:
            await endpoints.disable(
                conn,
                endpoint_id,
                "disabled by hand",
                actor=principal_of(request).name,
                incident=False,
            )
        async with conn.transaction():
            found = await endpoints.update(conn, endpoint_id, fields)
            if found is None:
                raise Problem(404, f"no webhook endpoint {endpoint_id}")
            changes = dict(fields)
            await record_in(
                conn,
                _entry(request, "webhooks.endpoint.update", str(endpoint_id), _jsonable(changes)),
            )
    return JSONResponse(_jsonable(found))


async def delete_endpoint(request: Request) -> Response:
    runtime = runtime_of(request)
    endpoint_id = _id(request)
    async with runtime.ops.connection() as conn, conn.transaction():
        if not await endpoints.delete(conn, endpoint_id):
            raise Problem(404, f"no webhook endpoint {endpoint_id}")
        await record_in(conn, _entry(request, "webhooks.endpoint.delete", str(endpoint_id), {}))
    return JSONResponse({"deleted": True, "id": endpoint_id})


async def rotate_secret(request: Request) -> Response:
    runtime = runtime_of(request)
    endpoint_id = _id(request)
    grace = runtime.settings.webhooks.secret_grace_seconds
    async with runtime.ops.connection() as conn, conn.transaction():
        rotated = await endpoints.rotate_secret(conn, endpoint_id, grace, runtime.secret_box)
        if rotated is None:
            raise Problem(404, f"no webhook endpoint {endpoint_id}")
        details = {"grace_seconds": grace}
        await record_in(
            conn,
            _entry(request, "webhooks.endpoint.rotate_secret", str(endpoint_id), details),
        )
    secret, previous = rotated
    return JSONResponse(
        {"secret": secret, "previous_expire_at": previous.isoformat() if previous else None}
    )


async def _enabled(conn: psycopg.AsyncConnection[Any], endpoint_id: int) -> None:
    found = await endpoints.get(conn, endpoint_id)
    if found is None:
        raise Problem(404, f"no webhook endpoint {endpoint_id}")
    if not found["enabled"]:
        raise Problem(409, f"webhook endpoint {endpoint_id} is disabled: enable it first")


async def test_endpoint(request: Request) -> Response:
    runtime = runtime_of(request)
    endpoint_id = _id(request)
    async with runtime.ops.connection() as conn, conn.transaction():
        await _enabled(conn, endpoint_id)
        sent = await replay.test_delivery(conn, endpoint_id, principal_of(request).name)
        await record_in(
            conn,
            _entry(request, "webhooks.endpoint.test", str(endpoint_id), {"webhook_id": sent.uid}),
        )
    body = {"message_id": sent.message_id, "webhook_id": sent.uid, "deliveries": sent.deliveries}
    return JSONResponse(body, status_code=202)


def _range_request(data: Mapping[str, Any], cap: int) -> tuple[Any, bool, int]:
    for name in ("from", "to"):
        if name in data and not isinstance(data[name], str | int):
            raise invalid(name, "epoch ms, ISO 8601 or now-24h")
    raw_from, raw_to = data.get("from"), data.get("to")
    window = parse_range(
        None if raw_from is None else str(raw_from),
        None if raw_to is None else str(raw_to),
        "now-24h",
    )
    dry_run = data.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise invalid("dry_run", "true or false")
    limit = data.get("limit", cap)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= cap:
        raise invalid("limit", f"an integer from 1 to {cap}")
    unknown = sorted(set(data) - {"from", "to", "dry_run", "limit"})
    if unknown:
        raise invalid(unknown[0], "unknown field")
    return window, dry_run, limit


def _range_action(name: str) -> Any:
    action = replay.RANGE_ACTIONS[name]

    async def endpoint(request: Request) -> Response:
        runtime = runtime_of(request)
        endpoint_id = _id(request)
        cap = runtime.settings.webhooks.replay_max_messages
        window, dry_run, limit = _range_request(await _json(request), cap)
        async with runtime.ops.connection() as conn, conn.transaction():
            await _enabled(conn, endpoint_id)
            result = await replay.over_range(
                conn, action, endpoint_id, window.start, window.end, dry_run=dry_run, limit=limit
            )
            details = {
                "from": window.start.isoformat(),
                "to": window.end.isoformat(),
                "dry_run": dry_run,
                "matched": result.matched,
                "done": result.done,
            }
            await record_in(
                conn,
                _entry(request, f"webhooks.endpoint.{name}", str(endpoint_id), details),
            )
        return JSONResponse(
            {
                "matched": result.matched,
                "done": result.done,
                "truncated": result.truncated and not dry_run,
                "dry_run": dry_run,
            }
        )

    return endpoint


async def replay_delivery(request: Request) -> Response:
    runtime = runtime_of(request)
    delivery_id = _id(request)
    async with runtime.ops.connection() as conn, conn.transaction():
        why = await replay.replay_delivery(conn, delivery_id)
        if why == "missing":
            raise Problem(404, f"no outbound webhook {delivery_id}")
        if why is not None:
            raise Problem(409, f"outbound webhook {delivery_id} is {why}: nothing to replay")
        await record_in(
            conn,
            _entry(request, "webhooks.delivery.replay", None, {"delivery_id": delivery_id}),
        )
    return JSONResponse({"replayed": True, "id": delivery_id}, status_code=202)


async def reprocess_dead_letters(request: Request) -> Response:
    runtime = runtime_of(request)
    data = await _json(request)
    direction = data.get("direction")
    if direction is not None and direction not in ("inbound", "outbound"):
        raise invalid("direction", "inbound, outbound, or absent for both")
    cap = runtime.settings.webhooks.replay_max_messages
    async with runtime.ops.connection() as conn, conn.transaction():
        done = await replay.reprocess_dead_letters(conn, direction, cap)
        details = {"direction": direction, "outbound": done.outbound, "inbound": done.inbound}
        await record_in(conn, _entry(request, "webhooks.dead_letters.reprocess", None, details))
    return JSONResponse({"outbound": done.outbound, "inbound": done.inbound})


NULLABLE_TIME = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
SCHEDULE = {
    "anyOf": [
        {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 1},
        {"type": "null"},
    ],
    "description": "delays in seconds before the 2nd, 3rd ... attempt; null: the global ones",
}
ENDPOINT_BODY = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "maxLength": endpoints.MAX_URL},
        "event_types": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "description": {"type": "string", "maxLength": endpoints.MAX_DESCRIPTION},
        "enabled": {"type": "boolean"},
        "rate_limit_per_second": {"anyOf": [{"type": "number"}, {"type": "null"}]},
        "max_in_flight": {"type": "integer", "minimum": 1},
        "retry_schedule_seconds": SCHEDULE,
    },
}
ENDPOINT_SCHEMA = {
    "type": "object",
    "required": ["id", "url", "event_types", "enabled", "max_in_flight", "secrets"],
    "properties": {
        "id": {"type": "integer"},
        "url": {"type": "string"},
        "description": {"type": "string"},
        "event_types": {"type": "array", "items": {"type": "string"}},
        "enabled": {"type": "boolean"},
        "disabled_reason": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "disabled_at": NULLABLE_TIME,
        "rate_limit_per_second": {"anyOf": [{"type": "number"}, {"type": "null"}]},
        "max_in_flight": {"type": "integer"},
        "retry_schedule_seconds": SCHEDULE,
        "consecutive_failures": {"type": "integer"},
        "circuit_open_until": NULLABLE_TIME,
        "failing_since": NULLABLE_TIME,
        "last_success_at": NULLABLE_TIME,
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "secret": {"type": "string"},
        "secrets": {"type": "array", "items": {"type": "object"}},
    },
}
RANGE_BODY = {
    "type": "object",
    "properties": {
        "from": {"type": "string", "description": "epoch ms, ISO 8601 or now-24h"},
        "to": {"type": "string"},
        "dry_run": {"type": "boolean"},
        "limit": {"type": "integer", "minimum": 1},
    },
}
RANGE_SCHEMA = {
    "type": "object",
    "required": ["matched", "done", "truncated", "dry_run"],
    "properties": {
        "matched": {"type": "integer"},
        "done": {"type": "integer"},
        "truncated": {"type": "boolean"},
        "dry_run": {"type": "boolean"},
    },
}
EMPTY_BODY = {"type": "object"}


def _spec(
    path: str,
    name: str,
    endpoint: Any,
    summary: str,
    method: str = "POST",
    *,
    body: Mapping[str, Any] | None = EMPTY_BODY,
    schema: Mapping[str, Any],
    status: int = 200,
    params: tuple[Param, ...] = (ID,),
) -> RouteSpec:
    return RouteSpec(
        path,
        name,
        endpoint,
        MANAGE,
        "json",
        summary,
        methods=(method,),
        params=params,
        body={"application/json": body} if body is not None else None,
        schema=schema,
        status=status,
        tags=TAGS,
    )


def webhook_routes() -> list[RouteSpec]:
    """The gateway's routes besides its drilldowns: the JSON management routes, and the
    endpoints' pages with their forms."""
    base = "/api/v1/webhook-endpoints"
    return [
        *inbound.ROUTES,
        *endpoint_changes.create_routes(),
        *endpoint_page.routes(),
        *endpoint_changes.routes(),
        _spec(
            base,
            "webhook_endpoint_create",
            create_endpoint,
            "Create a webhook endpoint (answers its first signing secret, once)",
            body=ENDPOINT_BODY,
            schema=ENDPOINT_SCHEMA,
            status=201,
            params=(),
        ),
        _spec(
            f"{base}/{{id}}",
            "webhook_endpoint_update",
            update_endpoint,
            "Change a webhook endpoint (enabled: false parks its queue as dead letters)",
            "PATCH",
            body=ENDPOINT_BODY,
            schema=ENDPOINT_SCHEMA,
        ),
        _spec(
            f"{base}/{{id}}",
            "webhook_endpoint_delete",
            delete_endpoint,
            "Delete a webhook endpoint and its deliveries",
            "DELETE",
            body=None,
            schema={"type": "object", "required": ["deleted", "id"]},
        ),
        _spec(
            f"{base}/{{id}}/rotate-secret",
            "webhook_endpoint_rotate_secret",
            rotate_secret,
            "New signing secret; the previous ones keep signing for 24 h",
            schema={"type": "object", "required": ["secret", "previous_expire_at"]},
        ),
        _spec(
            f"{base}/{{id}}/test",
            "webhook_endpoint_test",
            test_endpoint,
            "Send a webhook.test message to this endpoint (one attempt)",
            schema={"type": "object", "required": ["message_id", "webhook_id"]},
            status=202,
        ),
        _spec(
            f"{base}/{{id}}/replay",
            "webhook_endpoint_replay",
            _range_action("replay"),
            "Send this endpoint's failed deliveries of a time range again (dry_run: count)",
            body=RANGE_BODY,
            schema=RANGE_SCHEMA,
        ),
        _spec(
            f"{base}/{{id}}/recover",
            "webhook_endpoint_recover",
            _range_action("recover"),
            "Create the deliveries this endpoint should have had in a time range but never "
            "got (dry_run: count)",
            body=RANGE_BODY,
            schema=RANGE_SCHEMA,
        ),
        _spec(
            "/api/v1/webhooks/outbound/{id}/replay",
            "webhook_outbound_replay",
            replay_delivery,
            "Send one outbound webhook again (one attempt)",
            schema={"type": "object", "required": ["replayed", "id"]},
            status=202,
        ),
        _spec(
            "/api/v1/webhooks/dead-letters/reprocess",
            "webhook_dead_letters_reprocess",
            reprocess_dead_letters,
            "Reprocess dead letters: inbound events processed "
            "again, outbound deliveries sent again",
            body={"type": "object", "properties": {"direction": {"enum": ["inbound", "outbound"]}}},
            schema={"type": "object", "required": ["outbound", "inbound"]},
            params=(),
        ),
    ]
