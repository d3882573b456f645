"""A confirmed one-click change, whatever it changes (an action on the platform, a finance
ticket's status, a status notice's wording).

``GET`` answers a confirmation page, or its JSON for API keys and JSON clients, and changes
nothing; it carries an idempotency key the server minted for that change. ``POST`` carries
the CSRF token (checked by the middleware), that key (an API key sends its own
``Idempotency-Key`` header instead) and a reason, from a form or a JSON object whose values
are strings; it runs the change once per key and leaves its trace in the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.incidents.actions import requests as idempotency
from api.incidents.context import incidents_of
from api.pages import render
from api.problems import Problem, invalid
from api.routing import json_object, media_type_of, principal_of, runtime_of

REASON_MAX = 1000
OUTCOME_SCHEMA = {
    "type": "object",
    "required": ["action", "outcome", "result", "replayed"],
    "properties": {
        "action": {"type": "string"},
        "outcome": {"type": "string"},
        "result": {"type": "object"},
        "replayed": {"type": "boolean"},
        # A secret the change made (a new key, a password): in this answer only, never
        # stored, and absent from a repeat's answer.
        "shown_once": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

T = TypeVar("T")


def via_api_key(request: Request) -> bool:
    return "authorization" in request.headers


def page_wanted(request: Request) -> bool:
    """People get pages (and error pages); API keys and JSON clients get JSON. Sets
    ``request.state.html`` to match, for the error handlers."""
    wanted = not via_api_key(request) and "text/html" in request.headers.get("accept", "text/html")
    request.state.html = wanted
    return wanted


async def fields_of(request: Request) -> dict[str, str]:
    """The submitted fields: a form's string values, or a JSON object's, where a value that
    is neither a string nor an integer is a 400 naming it."""
    if media_type_of(request) == "application/json":
        data = await json_object(request, empty_ok=True)
        for name, value in data.items():
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise invalid(name, "a string (a list: comma-separated)")
        return {k: str(v) for k, v in data.items()}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def reason_of(request: Request, fields: Mapping[str, str], name: str = "reason") -> str:
    """The field ``name``, stripped and cut to ``REASON_MAX`` characters; shorter than the
    settings' ``reason_min_chars`` it is a 400."""
    minimum = incidents_of(request).settings.reason_min_chars
    reason = fields.get(name, "").strip()
    if len(reason) < minimum:
        raise invalid(name, f"say why, in at least {minimum} characters")
    return reason[:REASON_MAX]


def key_of(request: Request, action: str, fields: Mapping[str, str], actor: str) -> str:
    """The request's idempotency key: an API key's ``Idempotency-Key`` header (scoped to
    ``actor``), otherwise the form's key, which must be one the server minted for
    ``action``. A missing, malformed or foreign key is a 400."""
    if via_api_key(request):
        return idempotency.check_client(request.headers.get("idempotency-key"), actor)
    return idempotency.check_minted(runtime_of(request).keys, action, fields.get("idempotency_key"))


@dataclass(frozen=True)
class Submission:
    """A confirmed ``POST``, read and checked: who sends it, what they filled in, why, and
    under which idempotency key; ``html`` if the answer is a page."""

    actor: str
    fields: Mapping[str, str]
    key: str
    reason: str
    html: bool


async def submission(request: Request, action: str, reason_field: str = "reason") -> Submission:
    """The ``POST`` of ``action``: its fields, then its key, then its reason, each a 400
    when wrong, in that order."""
    actor = principal_of(request).name
    html = page_wanted(request)
    fields = await fields_of(request)
    key = key_of(request, action, fields, actor)
    return Submission(actor, fields, key, reason_of(request, fields, reason_field), html)


class Result(Protocol):
    """What a run did: a sentence for people and its JSON details."""

    @property
    def message(self) -> str: ...

    @property
    def result(self) -> Mapping[str, Any]: ...


def answer(
    request: Request,
    action: str,
    done: Result,
    replayed: bool,
    template: str,
    context: Mapping[str, Any],
    shown_once: Mapping[str, str] | None = None,
) -> Response:
    """What a run answers (``OUTCOME_SCHEMA``): JSON, or ``template`` with ``context``
    when ``request.state.html`` says a person asked. ``shown_once`` (secrets the run made)
    goes into this answer and nowhere else."""
    body: dict[str, Any] = {
        "action": action,
        "outcome": done.message,
        "result": dict(done.result),
        "replayed": replayed,
    }
    if shown_once:
        body["shown_once"] = dict(shown_once)
    if not request.state.html:
        return JSONResponse(body)
    return render(request, template, {**context, **body})


@dataclass(frozen=True)
class Claim:
    """A run of ``action`` by ``actor`` on ``target`` for ``reason``, under ``key``."""

    key: str
    action: str
    actor: str
    target: str
    reason: str


class Run(Protocol[T]):
    """What :func:`once` runs: ``apply`` makes the change (a :class:`~api.problems.Problem`
    says it did not), ``kept`` is what the key stores of its result (JSON) and ``replay``
    turns that back into a result for a repeat; ``failed`` and ``succeeded`` leave the
    trace (the audit entry and whatever goes with it)."""

    async def apply(self) -> T: ...

    def kept(self, done: T) -> dict[str, Any]: ...

    def replay(self, kept: Mapping[str, Any]) -> T: ...

    async def failed(self, problem: Problem) -> None: ...

    async def succeeded(self, done: T) -> None: ...


async def once(ops: AsyncConnectionPool, claim: Claim, run: Run[T]) -> tuple[T, bool]:
    """(result, replayed): the first request with ``claim.key`` runs the change; a repeat
    gets the first one's result without running it; a repeat while the first still runs is
    a 409, and so is the key used by another actor or for another action. A change that
    raises a Problem frees the key (the same click may be retried), records the failure
    and raises it again; one that succeeds stores its result under the key and records it."""
    async with ops.connection() as conn:
        previous = await idempotency.claim(
            conn, claim.key, claim.action, claim.actor, claim.target, claim.reason
        )
    if previous is not None:
        if previous.status != "done":
            raise Problem(409, "this request is still running; it runs once")
        return run.replay(previous.result), True
    try:
        done = await run.apply()
    except Problem as problem:
        async with ops.connection() as conn:
            await idempotency.release(conn, claim.key)
        await run.failed(problem)
        raise
    async with ops.connection() as conn:
        await idempotency.finish(conn, claim.key, "done", run.kept(done))
    await run.succeeded(done)
    return done, False
