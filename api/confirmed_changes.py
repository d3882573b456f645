"""A change to one record (a finance ticket's status, a status notice's wording), confirmed
the way every one-click action is (:mod:`api.confirmation`) and recorded in the audit log as
``action.<name>`` on the record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.confirmation import OUTCOME_SCHEMA, Claim, answer, once, page_wanted, submission
from api.incidents.actions import requests as idempotency
from api.incidents.context import incidents_of
from api.pages import render
from api.problems import Problem, invalid
from api.routing import Endpoint, Param, RouteSpec, audit_entry, runtime_of
from api.runtime import Runtime
from core.audit import record


@dataclass(frozen=True)
class Input:
    """A value the person types on the confirmation page (prefilled with ``value``)."""

    name: str
    label: str
    value: str = ""
    max_length: int = 200
    multiline: bool = False
    secret: bool = False  # typed unseen (a password)
    required: bool = True  # an optional one may be left empty


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
    # Secrets the change made, by label: answered once, never kept with the idempotency
    # key nor written to the audit log.
    shown_once: Mapping[str, str] = field(default_factory=dict)


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
FORM_BODY = {
    "application/x-www-form-urlencoded": {"type": "object"},
    "application/json": {"type": "object"},
}


def confirm(change: Change) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        wanted = page_wanted(request)  # before propose, so its refusals answer in kind
        proposal = await change.propose(request)
        key = idempotency.mint(runtime_of(request).keys, change.name)
        if not wanted:
            inputs = {i.name: i.value for i in proposal.inputs}
            body = {"action": change.name, "will": proposal.will, "inputs": inputs}
            return JSONResponse({**body, "idempotency_key": key})
        action = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        context = {"change": change, "proposal": proposal, "key": key, "action": action}
        return render(request, "change_confirm.html", context)

    return endpoint


def _values(proposal: Proposal, fields: Mapping[str, str]) -> dict[str, str]:
    values = {}
    for item in proposal.inputs:
        value = fields.get(item.name, "").strip()
        if not value and not item.required:
            values[item.name] = ""
            continue
        if not value or len(value) > item.max_length:
            raise invalid(item.name, f"between 1 and {item.max_length} characters")
        values[item.name] = value
    return values


@dataclass(frozen=True)
class _ChangeRun:
    """A record's change as :func:`api.confirmation.once` runs it; its trace is the audit
    entry on the record."""

    change: Change
    edit: Edit
    claim: Claim

    async def apply(self) -> Done:
        return await self.change.apply(self.edit)

    def kept(self, done: Done) -> dict[str, Any]:
        return {"outcome": done.message, "result": dict(done.result), "back": done.back}

    def replay(self, kept: Mapping[str, Any]) -> Done:
        return Done(kept["outcome"], kept["result"], kept["back"])

    async def failed(self, problem: Problem) -> None:
        await self._record("failed", {"idempotency_key": self.claim.key, "status": problem.status})

    async def succeeded(self, done: Done) -> None:
        await self._record("ok", {"idempotency_key": self.claim.key, **done.result})

    async def _record(self, outcome: str, details: dict[str, Any]) -> None:
        edit = self.edit
        entry = audit_entry(
            edit.request,
            f"action.{self.change.name}",
            target_type=self.change.target_type,
            target_id=self.claim.target,
            reason=edit.reason,
            outcome=outcome,
            details=details,
        )
        await record(edit.runtime.ops, entry)


def run(change: Change) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        sent = await submission(request, change.name)
        values = _values(await change.propose(request), sent.fields)
        now = incidents_of(request).clock()
        edit = Edit(runtime_of(request), request, sent.actor, sent.reason, values, now)
        claim = Claim(sent.key, change.name, sent.actor, change.target(request), sent.reason)
        done, replayed = await once(edit.runtime.ops, claim, _ChangeRun(change, edit, claim))
        context = {"change": change, "back": done.back, "shown_once": done.shown_once}
        return answer(
            request, change.name, done, replayed, "change_done.html", context, done.shown_once
        )

    return endpoint


def change_routes(
    change: Change,
    path: str,
    name: str,
    permission: str,
    params: tuple[Param, ...],
    tags: tuple[str, ...],
    shows: str = "what it will do",
    errors: Mapping[int, str] | None = None,
    run_errors: Mapping[int, str] | None = None,
) -> list[RouteSpec]:
    """The two routes of ``change`` at ``path``, for ``permission``, tagged ``tags`` and
    ``actions``: ``GET`` (route ``name``), the confirmation page, which ``shows`` something
    and changes nothing, with ``errors``; ``POST`` (route ``<name>_run``), which runs the
    change, with ``run_errors``."""
    return [
        RouteSpec(
            path,
            name,
            confirm(change),
            permission,
            "html",
            f"{change.title}: {shows} (changes nothing)",
            params=params,
            tags=(*tags, "actions"),
            alternatives={"application/json": CONFIRMATION_SCHEMA},
            errors=errors or {},
        ),
        RouteSpec(
            path,
            f"{name}_run",
            run(change),
            permission,
            "html",
            f"{change.title}: run it (once per idempotency key)",
            methods=("POST",),
            params=params,
            tags=(*tags, "actions"),
            alternatives={"application/json": OUTCOME_SCHEMA},
            body=FORM_BODY,
            errors=run_errors or {},
        ),
    ]
