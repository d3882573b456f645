"""Managing webhook endpoints from their pages: create, edit (URL, event types, description,
retry schedule, rate limit), send a test event, replay failed deliveries over a time range,
rotate the signing secret, disable and enable.

Each is a confirmed change (:mod:`api.confirmed_changes`): ``GET`` shows what will happen
(for a replay, how many deliveries it would send again) and changes nothing; ``POST``, with
the CSRF token, the page's idempotency key and a reason, makes the change once and leaves
``action.webhook-endpoint-<change>`` in the audit log. They need ``webhooks.manage``; the
work itself is :mod:`gateway.endpoints` and :mod:`gateway.replay`, as for the JSON routes.

A new signing secret (on create and on rotation) is shown once, on the answer to the
``POST``: it is neither kept with the idempotency key nor written to the audit log.
"""

from __future__ import annotations

from typing import Any

import psycopg
from starlette.requests import Request

from api.confirmed_changes import Change, Done, Edit, Input, Proposal, change_routes
from api.problems import Problem, invalid
from api.queries import webhooks as sql
from api.routing import Param, RouteSpec, runtime_of
from api.runtime import Runtime
from api.timerange import parse_range
from api.webhooks import endpoint_form as form
from gateway import endpoints, replay

MANAGE = "webhooks.manage"
TAGS = ("webhooks",)
TARGET = "webhook_endpoint"
ID = Param("id", {"type": "integer", "minimum": 1}, "webhook endpoint id", "path", required=True)
REPLAY_DEFAULT_FROM = "now-24h"
SECRET_LABEL = "Signing secret"  # noqa: S105 (a label, not a secret)


def endpoint_id(request: Request) -> int:
    raw = str(request.path_params.get("id", ""))
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise invalid("id", "a webhook endpoint id")
    return int(raw)


def _target(request: Request) -> str:
    return str(endpoint_id(request))


def _page(found: int) -> str:
    return f"/webhook-endpoints/{found}"


async def _get(conn: psycopg.AsyncConnection[Any], found: int) -> dict[str, Any]:
    record = await endpoints.get(conn, found)
    if record is None:
        raise Problem(404, f"no webhook endpoint {found}")
    return record


async def current(request: Request) -> dict[str, Any]:
    async with runtime_of(request).ops.connection() as conn:
        return await _get(conn, endpoint_id(request))


async def _enabled(conn: psycopg.AsyncConnection[Any], found: int) -> dict[str, Any]:
    record = await _get(conn, found)
    if not record["enabled"]:
        raise Problem(409, f"webhook endpoint {found} is disabled: enable it first")
    return record


def _inputs(shown: dict[str, str], runtime: Runtime, *, creating: bool) -> tuple[Input, ...]:
    defaults = form.global_schedule(runtime.settings.webhooks)
    rate = runtime.settings.webhooks.default_rate_limit_per_second
    return (
        Input("url", "URL (https://...)", shown["url"], endpoints.MAX_URL),
        Input(
            "event_types",
            "Event types, comma-separated ('payment.*', '*' for all)",
            shown["event_types"] or ("*" if creating else ""),
        ),
        Input(
            "description",
            "Description",
            shown["description"],
            endpoints.MAX_DESCRIPTION,
            required=False,
        ),
        Input(
            "retry_schedule",
            f"Retry delays in seconds, comma-separated (empty: the global {defaults})",
            shown["retry_schedule"],
            1000,
            required=False,
        ),
        Input(
            "rate_limit",
            f"Rate limit, deliveries a second (empty: {'none' if rate is None else f'{rate:g}'})",
            shown["rate_limit"],
            20,
            required=False,
        ),
    )


def _asked(request: Request) -> dict[str, str]:
    """What the page's form put in the query (values to prefill with)."""
    query = request.query_params
    return {name: query[name] for name in form.FIELDS if name in query}


async def propose_create(request: Request) -> Proposal:
    blank = dict.fromkeys(form.FIELDS, "")
    shown = {**blank, **_asked(request)}
    will = (
        "Create a webhook endpoint. Its signing secret is shown once, on the next page; "
        "deliveries of the event types it takes start with the next event."
    )
    return Proposal(will, _inputs(shown, runtime_of(request), creating=True))


async def apply_create(edit: Edit) -> Done:
    hooks = edit.runtime.settings.webhooks
    fields = await form.fields_of(edit.values, hooks, creating=True)
    fields.setdefault("max_in_flight", hooks.default_max_in_flight)
    spec = endpoints.EndpointSpec(**fields)
    async with edit.runtime.ops.connection() as conn, conn.transaction():
        created, secret = await endpoints.create_async(conn, spec, edit.runtime.secret_box)
    made = int(created["id"])
    result = {"endpoint": made, "url": spec.url, **form.text_of(created)}
    message = f"webhook endpoint #{made} created for {spec.url}"
    return Done(message, result, _page(made), shown_once={SECRET_LABEL: secret})


async def propose_edit(request: Request) -> Proposal:
    record = await current(request)
    shown = {**form.text_of(record), **_asked(request)}
    will = (
        f"Change webhook endpoint #{record['id']} ({record['url']}). A new URL passes the "
        "SSRF guard first; a retry schedule applies to the deliveries that fail from now on."
    )
    return Proposal(will, _inputs(shown, runtime_of(request), creating=False))


async def apply_edit(edit: Edit) -> Done:
    found = endpoint_id(edit.request)
    fields = await form.fields_of(edit.values, edit.runtime.settings.webhooks, creating=False)
    async with edit.runtime.ops.connection() as conn, conn.transaction():
        before = await _get(conn, found)
        changed = form.changes(before, fields)
        await endpoints.update(conn, found, fields)
    what = ", ".join(name.replace("_", " ") for name in changed) or "nothing"
    result = {"endpoint": found, "changed": changed}
    return Done(f"webhook endpoint #{found}: changed {what}", result, _page(found))


async def propose_test(request: Request) -> Proposal:
    found = endpoint_id(request)
    async with runtime_of(request).ops.connection() as conn:
        record = await _enabled(conn, found)
    return Proposal(
        f"Send a webhook.test event to endpoint #{found} ({record['url']}): one delivery "
        "through the worker, signed and logged like any other, tried once."
    )


async def apply_test(edit: Edit) -> Done:
    found = endpoint_id(edit.request)
    async with edit.runtime.ops.connection() as conn, conn.transaction():
        await _enabled(conn, found)
        sent = await replay.test_delivery(conn, found, edit.actor)
        row = await (
            await conn.execute(sql.MESSAGE_DELIVERY, {"message": sent.message_id, "id": found})
        ).fetchone()
    if row is None:
        raise Problem(409, f"webhook endpoint {found} took no delivery: is it enabled?")
    delivery = int(row[0])
    result = {"endpoint": found, "webhook_id": sent.uid, "delivery": delivery}
    message = f"test event {sent.uid} queued for endpoint #{found}"
    return Done(message, result, f"/webhooks/outbound/{delivery}")


def _window(values: dict[str, str]) -> tuple[Any, Any]:
    window = parse_range(values.get("from"), values.get("to"), REPLAY_DEFAULT_FROM)
    return window.start, window.end


async def propose_replay(request: Request) -> Proposal:
    found = endpoint_id(request)
    since, until = _window(dict(request.query_params))
    cap = runtime_of(request).settings.webhooks.replay_max_messages
    async with runtime_of(request).ops.connection() as conn:
        await _enabled(conn, found)
        counted = await replay.over_range(
            conn, replay.RANGE_ACTIONS["replay"], found, since, until, dry_run=True, limit=cap
        )
    capped = f" (at most {cap} in one go)" if counted.matched > cap else ""
    will = (
        f"{counted.matched} deliveries would be replayed{capped}: the failed deliveries to "
        f"endpoint #{found} created from {since.isoformat()} to {until.isoformat()}, each "
        "sent again once with its original webhook-id (receivers deduplicate by it)."
    )
    inputs = (
        Input("from", "From (UTC)", since.isoformat(), 40),
        Input("to", "To (UTC)", until.isoformat(), 40),
    )
    return Proposal(will, inputs)


async def apply_replay(edit: Edit) -> Done:
    found = endpoint_id(edit.request)
    since, until = _window(dict(edit.values))
    cap = edit.runtime.settings.webhooks.replay_max_messages
    async with edit.runtime.ops.connection() as conn, conn.transaction():
        await _enabled(conn, found)
        done = await replay.over_range(
            conn, replay.RANGE_ACTIONS["replay"], found, since, until, dry_run=False, limit=cap
        )
    result = {
        "endpoint": found,
        "from": since.isoformat(),
        "to": until.isoformat(),
        "matched": done.matched,
        "replayed": done.done,
    }
    message = f"{done.done} of {done.matched} failed deliveries to endpoint #{found} replayed"
    return Done(message, result, _page(found))


async def propose_rotate(request: Request) -> Proposal:
    record = await current(request)
    hours = runtime_of(request).settings.webhooks.secret_grace_seconds / 3600
    return Proposal(
        f"Make a new signing secret for endpoint #{record['id']}, shown once on the next page. "
        f"It signs every delivery from now on; the current secret keeps signing beside it for "
        f"{hours:g} h (each delivery carries both signatures), so the receiver can switch "
        "without a gap. After that, only the new one signs."
    )


async def apply_rotate(edit: Edit) -> Done:
    found = endpoint_id(edit.request)
    grace = edit.runtime.settings.webhooks.secret_grace_seconds
    async with edit.runtime.ops.connection() as conn, conn.transaction():
        rotated = await endpoints.rotate_secret(conn, found, grace, edit.runtime.secret_box)
    if rotated is None:
        raise Problem(404, f"no webhook endpoint {found}")
    secret, previous = rotated
    until = previous.isoformat() if previous else None
    result = {"endpoint": found, "previous_sign_until": until}
    message = f"endpoint #{found} has a new signing secret; the previous one signs until {until}"
    return Done(message, result, _page(found), shown_once={SECRET_LABEL: secret})


async def _queued(conn: psycopg.AsyncConnection[Any], found: int) -> int:
    rows = await (await conn.execute(sql.ENDPOINT_COUNTS, {"id": found})).fetchall()
    return sum(int(count) for status, count in rows if status == "pending")


async def propose_disable(request: Request) -> Proposal:
    found = endpoint_id(request)
    async with runtime_of(request).ops.connection() as conn:
        record = await _get(conn, found)
        queued = await _queued(conn, found)
    if not record["enabled"]:
        return Proposal(f"Endpoint #{found} is disabled already: this changes nothing.")
    return Proposal(
        f"Disable endpoint #{found}: nothing more is sent to it, and the {queued} deliveries "
        "queued for it become dead letters (replay them once it works again)."
    )


async def apply_disable(edit: Edit) -> Done:
    found = endpoint_id(edit.request)
    async with edit.runtime.ops.connection() as conn:
        await _get(conn, found)
        parked = await endpoints.disable(
            conn, found, f"disabled by hand: {edit.reason}", actor=edit.actor, incident=False
        )
    if parked is None:
        return Done(f"endpoint #{found} was disabled already", {"endpoint": found}, _page(found))
    message = f"endpoint #{found} disabled; {parked} queued deliveries parked as dead letters"
    return Done(message, {"endpoint": found, "parked": parked}, _page(found))


async def propose_enable(request: Request) -> Proposal:
    record = await current(request)
    if record["enabled"]:
        return Proposal(
            f"Endpoint #{record['id']} is enabled already: this only starts its failure "
            "streak and circuit afresh."
        )
    return Proposal(
        f"Enable endpoint #{record['id']} (disabled: {record['disabled_reason']}): new events "
        "are delivered to it again, its failure streak and circuit start afresh. What was "
        "parked while it was disabled stays in the dead letters: replay it from its page."
    )


async def apply_enable(edit: Edit) -> Done:
    found = endpoint_id(edit.request)
    async with edit.runtime.ops.connection() as conn, conn.transaction():
        before = await _get(conn, found)
        await endpoints.update(conn, found, {"enabled": True})
    was = "" if not before["enabled"] else " (it was already: its failure streak starts afresh)"
    return Done(f"endpoint #{found} enabled{was}", {"endpoint": found}, _page(found))


def _change(name: str, title: str, propose: Any, apply: Any, target: Any = _target) -> Change:
    return Change(f"webhook-endpoint-{name}", title, TARGET, target, propose, apply)


CREATE = _change("create", "New webhook endpoint", propose_create, apply_create, lambda _: "new")
EDIT = _change("edit", "Change webhook endpoint", propose_edit, apply_edit)
TEST = _change("test", "Send a test event", propose_test, apply_test)
REPLAY = _change("replay", "Replay failed deliveries", propose_replay, apply_replay)
ROTATE = _change("rotate-secret", "Rotate signing secret", propose_rotate, apply_rotate)
DISABLE = _change("disable", "Disable webhook endpoint", propose_disable, apply_disable)
ENABLE = _change("enable", "Enable webhook endpoint", propose_enable, apply_enable)

FORM_PARAMS = (
    Param("url", {"type": "string", "maxLength": endpoints.MAX_URL}, "URL to propose"),
    Param("event_types", {"type": "string"}, "event types to propose, comma-separated"),
    Param("description", {"type": "string"}, "description to propose"),
    Param("retry_schedule", {"type": "string"}, "retry delays in seconds, comma-separated"),
    Param("rate_limit", {"type": "string"}, "deliveries a second; empty: the default"),
)
RANGE_PARAMS = (
    Param("from", {"type": "string"}, "epoch ms, ISO 8601 or now-24h (default now-24h)"),
    Param("to", {"type": "string"}, "epoch ms, ISO 8601 or now (default now)"),
)
ERRORS = {404: "no such webhook endpoint", 409: "the endpoint's state does not allow it"}


def _routes(change: Change, suffix: str, params: tuple[Param, ...] = ()) -> list[RouteSpec]:
    name = "webhook_endpoint_page_" + suffix.replace("-", "_")
    path = f"/webhook-endpoints/{{id}}/{suffix}"
    return change_routes(
        change, path, name, MANAGE, (ID, *params), TAGS, errors=ERRORS, run_errors=ERRORS
    )


def create_routes() -> list[RouteSpec]:
    """``/webhook-endpoints/new``: before ``/webhook-endpoints/{id}`` in the route table,
    which would otherwise take "new" for an id."""
    return change_routes(
        CREATE, "/webhook-endpoints/new", "webhook_endpoint_page_new", MANAGE, FORM_PARAMS, TAGS
    )


def routes() -> list[RouteSpec]:
    return [
        *_routes(EDIT, "edit", FORM_PARAMS),
        *_routes(TEST, "send-test"),
        *_routes(REPLAY, "replay", RANGE_PARAMS),
        *_routes(ROTATE, "rotate-secret"),
        *_routes(DISABLE, "disable"),
        *_routes(ENABLE, "enable"),
    ]
