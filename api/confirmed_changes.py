"""A change to one record (a finance ticket's status, a status notice's wording) run the
way every one-click action runs: ``GET`` answers a confirmation page (or its JSON for API
keys) and changes nothing; ``POST`` carries the CSRF token (checked by the middleware), the
page's server-minted idempotency key (or an API key's ``Idempotency-Key`` header) and a
reason, runs the change once per key, and records it in the audit log (``action.<name>``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.incidents.actions import requests as idempotency
from api.incidents.context import incidents_of
from api.pages import render
from api.problems import Problem, invalid
from api.routing import (
    Endpoint,
    audit_entry,
    json_object,
    media_type_of,
    principal_of,
    runtime_of,
)
from api.runtime import Runtime
from core.audit import record

REASON_MAX = 1000


@dataclass(frozen=True)
class Input:
    """A value the person types on the confirmation page (prefilled with ``value``)."""

    name: str
    label: str
    value: str = ""
    max_length: int = 200
    multiline: bool = False


@dataclass(frozen=True)
class Proposal:
    """What the confirmation page says will happen, and what it asks for."""

    will: str
    inputs: tuple[Input, ...] = ()


@dataclass(frozen=True)
class Edit:
    runtime: Runtime
    request: Request  # its path and query parameters name the record and the change
    actor: str
    reason: str
    values: Mapping[str, str]  # the inputs, as submitted
    now: datetime


@dataclass(frozen=True)
class Done:
    message: str
    result: Mapping[str, Any]
    back: str  # the record's page


@dataclass(frozen=True)
class Change:
    name: str  # idempotency keys and the audit log's action.<name>
    title: str
    target_type: str
    target: Callable[[Request], str]  # the audit log's target id
    propose: Callable[[Request], Awaitable[Proposal]]  # raises Problem (404, 409)
    apply: Callable[[Edit], Awaitable[Done]]


CONFIRMATION_SCHEMA = {
    "type": "object",
    "required": ["action", "will", "inputs", "idempotency_key"],
    "properties": {
        "action": {"type": "string"},
        "will": {"type": "string"},
        "inputs": {"type": "object", "additionalProperties": {"type": "string"}},
        "idempotency_key": {"type": "string"},
    },
}
OUTCOME_SCHEMA = {
    "type": "object",
    "required": ["action", "outcome", "result", "replayed"],
    "properties": {
        "action": {"type": "string"},
        "outcome": {"type": "string"},
        "result": {"type": "object"},
        "replayed": {"type": "boolean"},
    },
}
FORM_BODY = {
    "application/x-www-form-urlencoded": {"type": "object"},
    "application/json": {"type": "object"},
}


def _via_api_key(request: Request) -> bool:
    return "authorization" in request.headers


def _page_wanted(request: Request) -> bool:
    wanted = not _via_api_key(request) and "text/html" in request.headers.get("accept", "text/html")
    request.state.html = wanted
    return wanted


def confirm(change: Change) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        proposal = await change.propose(request)
        key = idempotency.mint(runtime_of(request).keys, change.name)
        if not _page_wanted(request):
            inputs = {i.name: i.value for i in proposal.inputs}
            body = {"action": change.name, "will": proposal.will, "inputs": inputs}
            return JSONResponse({**body, "idempotency_key": key})
        action = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        context = {"change": change, "proposal": proposal, "key": key, "action": action}
        return render(request, "change_confirm.html", context)

    return endpoint


async def _fields(request: Request) -> dict[str, str]:
    if media_type_of(request) == "application/json":
        data = await json_object(request, empty_ok=True)
        return {k: str(v) for k, v in data.items() if isinstance(v, str | int)}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _values(proposal: Proposal, fields: Mapping[str, str]) -> dict[str, str]:
    values = {}
    for item in proposal.inputs:
        value = fields.get(item.name, "").strip()
        if not value or len(value) > item.max_length:
            raise invalid(item.name, f"between 1 and {item.max_length} characters")
        values[item.name] = value
    return values


def _key(request: Request, change: Change, fields: Mapping[str, str], actor: str) -> str:
    if _via_api_key(request):
        return idempotency.check_client(request.headers.get("idempotency-key"), actor)
    keys = runtime_of(request).keys
    return idempotency.check_minted(keys, change.name, fields.get("idempotency_key"))


def _reason(request: Request, fields: Mapping[str, str]) -> str:
    minimum = incidents_of(request).settings.reason_min_chars
    reason = fields.get("reason", "").strip()
    if len(reason) < minimum:
        raise invalid("reason", f"say why, in at least {minimum} characters")
    return reason[:REASON_MAX]


async def _once(request: Request, change: Change, key: str, edit: Edit) -> tuple[Done, bool]:
    runtime = edit.runtime
    target = change.target(request)
    async with runtime.ops.connection() as conn:
        previous = await idempotency.claim(conn, key, change.name, edit.actor, target, edit.reason)
    if previous is not None:
        if previous.status != "done":
            raise Problem(409, "this request is still running; it runs once")
        stored = previous.result
        return Done(stored["outcome"], stored["result"], stored["back"]), True
    audit = {"target_type": change.target_type, "target_id": target, "reason": edit.reason}
    try:
        done = await change.apply(edit)
    except Problem as problem:
        async with runtime.ops.connection() as conn:
            await idempotency.release(conn, key)
        details = {"idempotency_key": key, "status": problem.status}
        failed = audit_entry(
            request, f"action.{change.name}", outcome="failed", details=details, **audit
        )
        await record(runtime.ops, failed)
        raise
    async with runtime.ops.connection() as conn:
        stored = {"outcome": done.message, "result": dict(done.result), "back": done.back}
        await idempotency.finish(conn, key, "done", stored)
    details = {"idempotency_key": key, **done.result}
    entry = audit_entry(request, f"action.{change.name}", details=details, **audit)
    await record(runtime.ops, entry)
    return done, False


def run(change: Change) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        runtime, actor = runtime_of(request), principal_of(request).name
        html = _page_wanted(request)
        fields = await _fields(request)
        key = _key(request, change, fields, actor)
        reason = _reason(request, fields)
        values = _values(await change.propose(request), fields)
        edit = Edit(runtime, request, actor, reason, values, incidents_of(request).clock())
        done, replayed = await _once(request, change, key, edit)
        body = {
            "action": change.name,
            "outcome": done.message,
            "result": dict(done.result),
            "replayed": replayed,
        }
        if not html:
            return JSONResponse(body)
        return render(request, "change_done.html", {"change": change, "back": done.back, **body})

    return endpoint
