"""The route table's building blocks: a :class:`RouteSpec` per route, and :func:`guarded`,
the one place a route's permission is enforced.

The app, the OpenAPI document and the route × role test are all generated from the specs,
so a route cannot exist without a permission (or an explicit ``None``: public).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.auth.principal import Principal, authenticate
from api.display import viewer
from api.problems import Problem
from api.rbac import allowed
from api.runtime import Runtime
from core import json_depth
from core.audit import AuditEntry, record

Endpoint = Callable[[Request], Awaitable[Response]]
Kind = Literal["json", "html", "csv", "text", "form"]


@dataclass(frozen=True)
class Param:
    """A query or path parameter, as the OpenAPI document describes it. A query parameter
    the route does not declare, or a value outside its ``enum`` (``items.enum`` for an array,
    whose values may also be comma-separated), is refused before the endpoint runs."""

    name: str
    schema: Mapping[str, Any]
    description: str = ""
    location: Literal["query", "path"] = "query"
    required: bool = False

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The values the parameter takes, when it is an enum."""
        one = self.schema.get("items", {}) if self.schema.get("type") == "array" else self.schema
        return tuple(str(v) for v in one["enum"]) if "enum" in one else None

    def unknown_values(self, given: list[str]) -> list[str]:
        choices = self.choices
        if choices is None:
            return []
        if self.schema.get("type") == "array":
            given = [part for value in given for part in value.split(",")]
        return [value for value in given if value != "" and value not in choices]


@dataclass(frozen=True)
class RouteSpec:
    path: str
    name: str
    endpoint: Endpoint
    permission: str | None  # None: public
    kind: Kind  # what a successful response is; "form": a POSTed form answered by a redirect
    summary: str
    methods: tuple[str, ...] = ("GET",)
    params: tuple[Param, ...] = ()
    body: Mapping[str, Any] | None = None  # {media type: schema} of the request body
    schema: Mapping[str, Any] | None = None  # of a successful JSON response (SSE: an event)
    status: int = 200
    tags: tuple[str, ...] = ()
    alternatives: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # more media
    media_type: str | None = None  # of a "text" response
    errors: Mapping[int, str] = field(default_factory=dict)  # more documented error statuses

    @property
    def html(self) -> bool:
        return self.kind in ("html", "form")

    @property
    def query_params(self) -> dict[str, Param]:
        return {p.name: p for p in self.params if p.location == "query"}


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def media_type_of(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip()


async def json_object(request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    raw = await request.body()
    if empty_ok and not raw:
        return {}
    try:
        data = json_depth.loads(raw)
    except json_depth.JsonTooDeep as exc:
        raise Problem(400, f"the body is {exc}") from None
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise Problem(400, "the body must be a JSON object")
    return data


def safe_next(target: str | None) -> str:
    """A local path to return to after sign-in; anything else (an open redirect) is '/'."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def audit_entry(request: Request, action: str, **fields: Any) -> AuditEntry:
    """The audit entry for what happens in this request: its id and client address, and as
    actor the signed-in principal, unless ``fields`` name the ``actor`` (a sign-in, or a
    refusal, before the request holds a principal). Other ``fields`` are
    :class:`~core.audit.AuditEntry`'s; an unknown one is a TypeError."""
    if "actor" not in fields:
        principal = principal_of(request)
        fields = {"actor": principal.name, "actor_role": principal.role, **fields}
    return AuditEntry(
        action=action,
        request_id=request.scope.get("state", {}).get("request_id"),
        ip_address=request.client.host if request.client else None,
        **fields,
    )


async def _rate_limit(runtime: Runtime, who: str, limit: int | None = None) -> None:
    """``limit`` requests a minute for ``who`` (an API key's own), else the default."""
    per_minute = limit or runtime.api.requests_per_minute
    verdict = await runtime.limiter.hit(f"api:{who}", per_minute, 60)
    if not verdict.allowed:
        raise Problem(
            429,
            f"more than {per_minute} requests a minute; slow down",
            headers={"Retry-After": str(verdict.retry_after)},
        )


async def _audit_denied(
    runtime: Runtime, request: Request, principal: Principal, spec: RouteSpec
) -> None:
    """A refused action is on the record too."""
    entry = audit_entry(
        request,
        f"action.{spec.path.rsplit('/', 1)[-1]}",
        actor=principal.name,
        actor_role=principal.role,
        target_type="route",
        target_id=f"{request.method} {spec.path}",
        outcome="denied",
        details={"permission": spec.permission},
    )
    await record(runtime.ops, entry)


def _wants_json(request: Request, spec: RouteSpec) -> bool:
    """A page route with a JSON face answers API keys and JSON clients in JSON."""
    if not spec.html or "application/json" not in spec.alternatives:
        return False
    accept = request.headers.get("accept", "text/html")
    return "authorization" in request.headers or "text/html" not in accept


def check_query(request: Request, spec: RouteSpec) -> None:
    """A 400 naming every query parameter the route does not declare (and listing the ones
    it does), or every value outside a declared parameter's enum: what the API does not
    understand is refused, never ignored."""
    declared = spec.query_params
    unknown = sorted({name for name in request.query_params if name not in declared})
    if unknown:
        accepted = list(declared)
        takes = f"accepted: {', '.join(accepted)}" if accepted else "it takes none"
        if _wants_json(request, spec):
            request.state.html = False
        raise Problem(
            400,
            f"unknown query parameter {', '.join(unknown)}; {takes}",
            invalid_params=[(name, f"not a parameter of {spec.path}; {takes}") for name in unknown],
            accepted_params=accepted,
        )
    bad = [
        (param.name, f"{value!r} is not one of {', '.join(param.choices or ())}")
        for param in declared.values()
        for value in param.unknown_values(request.query_params.getlist(param.name))
    ]
    if bad:
        if _wants_json(request, spec):
            request.state.html = False
        raise Problem(400, "; ".join(f"{n}: {r}" for n, r in bad), invalid_params=bad)


def guarded(spec: RouteSpec) -> Endpoint:
    """The endpoint behind the spec's permission: 401 (or the sign-in page) without a
    principal, 429 over the rate limit, 403 without the permission, then 400 for a query
    the route's declared parameters do not cover (:func:`check_query`)."""

    async def endpoint(request: Request) -> Response:
        request.state.html = spec.html
        if spec.permission is None:
            check_query(request, spec)
            return await spec.endpoint(request)
        runtime = runtime_of(request)
        client = request.client.host if request.client else "unknown"
        try:
            principal = await authenticate(runtime, request)
        except Problem:
            await _rate_limit(runtime, f"ip:{client}")
            raise
        if principal is None:
            await _rate_limit(runtime, f"ip:{client}")
            if spec.html and request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            raise Problem(
                401,
                "sign in, or send an API key as 'Authorization: Bearer opsk_...'",
                headers={"WWW-Authenticate": 'Bearer realm="opsdeck"'},
            )
        request.scope["state"]["principal_name"] = principal.name
        if principal.key_id is None:
            return await _authorized(runtime, request, principal, spec)
        try:
            response = await _authorized(runtime, request, principal, spec)
        except Problem as problem:
            runtime.key_usage.count(principal.key_id, problem.status)
            raise
        runtime.key_usage.count(principal.key_id, response.status_code)
        return response

    return endpoint


def _refusal(principal: Principal, permission: str) -> str:
    if principal.via == "api_key" and allowed(principal.role, permission):
        return f"the API key's scopes do not include {permission}"
    return f"role {principal.role} does not hold {permission}"


async def _authorized(
    runtime: Runtime, request: Request, principal: Principal, spec: RouteSpec
) -> Response:
    """The rest of :func:`guarded` once the principal is known: its rate limit, the
    permission, the query, the endpoint."""
    assert spec.permission is not None
    await _rate_limit(runtime, principal.name, principal.rate_limit)
    if not principal.can(spec.permission):
        if "actions" in spec.tags:
            await _audit_denied(runtime, request, principal, spec)
        raise Problem(403, _refusal(principal, spec.permission))
    request.state.principal = principal
    check_query(request, spec)
    if spec.html:
        await viewer.remember(request, runtime, principal)
    return await spec.endpoint(request)
