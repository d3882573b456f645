"""The action routes: ``GET /actions/<name>`` (the confirmation page, or its JSON for API
keys; never changes anything) and ``POST /actions/<name>`` (runs the effect once per
idempotency key)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.incidents.actions import requests as idempotency
from api.incidents.actions.catalog import ACTIONS
from api.incidents.actions.perform import Caller, perform
from api.incidents.actions.spec import ActionSpec, Context, Outcome, Target
from api.incidents.context import incidents_of
from api.pages import render
from api.problems import invalid
from api.routing import Param, RouteSpec, json_object, media_type_of, principal_of, runtime_of

TAGS = ("actions",)
CONFIRMATION_SCHEMA = {
    "type": "object",
    "required": ["action", "will", "counts", "items", "idempotency_key"],
    "properties": {
        "action": {"type": "string"},
        "will": {"type": "string"},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "items": {"type": "array", "items": {"type": "string"}},
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
TARGET_PARAMS = (
    Param("alertname", {"type": "string", "maxLength": 200}, "the alert acted on"),
    Param("incident", {"type": "integer", "minimum": 1}, "the incident acted on"),
    Param("panel", {"type": "string", "maxLength": 200}, "the dashboard panel clicked"),
    Param("failure_code", {"type": "string", "maxLength": 100}, "payment failure code"),
    Param("template", {"type": "string", "maxLength": 100}, "partner notice template"),
    Param("source", {"type": "string", "maxLength": 50}, "grafana, alert, slack or api"),
    Param("from", {"type": "string"}, "the dashboard's time range (informational)"),
    Param("to", {"type": "string"}, "the dashboard's time range (informational)"),
)


def _text(values: Any, name: str, limit: int = 200) -> str | None:
    value = values.get(name)
    if value is None or value == "":
        return None
    if len(value) > limit:
        raise invalid(name, f"at most {limit} characters")
    return str(value)


def target_of(request: Request) -> Target:
    query = request.query_params
    raw_incident = _text(query, "incident")
    if raw_incident is not None and not raw_incident.isdigit():
        raise invalid("incident", "a positive integer")
    return Target(
        alertname=_text(query, "alertname"),
        incident=int(raw_incident) if raw_incident else None,
        panel=_text(query, "panel"),
        failure_code=_text(query, "failure_code", 100),
        template=_text(query, "template", 100),
        source=_text(query, "source", 50) or "api",
    )


def _via_api_key(request: Request) -> bool:
    return "authorization" in request.headers


def _page_wanted(request: Request) -> bool:
    """People get pages (and error pages); API keys and JSON clients get JSON."""
    wanted = not _via_api_key(request) and "text/html" in request.headers.get("accept", "text/html")
    request.state.html = wanted
    return wanted


def confirm_page(spec: ActionSpec) -> Any:
    async def endpoint(request: Request) -> Response:
        runtime, incidents = runtime_of(request), incidents_of(request)
        target = target_of(request)
        summary = await spec.summarize(runtime, incidents, target)
        key = idempotency.mint(runtime.keys, spec.name)
        if not _page_wanted(request):
            body = {
                "action": spec.name,
                "will": summary.will,
                "counts": dict(summary.counts),
                "items": list(summary.items),
                "idempotency_key": key,
            }
            return JSONResponse(body)
        context = {"spec": spec, "summary": summary, "key": key, "query": request.url.query}
        return render(request, "action.html", context)

    return endpoint


async def _form_or_json(request: Request) -> dict[str, str]:
    if media_type_of(request) == "application/json":
        data = await json_object(request, empty_ok=True)
        return {k: str(v) for k, v in data.items() if isinstance(v, str | int)}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _reason(fields: dict[str, str], minimum: int) -> str:
    reason = fields.get("reason", "").strip()
    if len(reason) < minimum:
        raise invalid("reason", f"say why, in at least {minimum} characters")
    return reason[:1000]


def _answer(request: Request, spec: ActionSpec, outcome: Outcome, replayed: bool) -> Response:
    body = {
        "action": spec.name,
        "outcome": outcome.message,
        "result": dict(outcome.result),
        "replayed": replayed,
    }
    status = 200
    if not request.state.html:
        return JSONResponse(body, status_code=status)
    return render(request, "action_done.html", {"spec": spec, **body}, status=status)


def run_action(spec: ActionSpec) -> Any:
    async def endpoint(request: Request) -> Response:
        runtime, incidents = runtime_of(request), incidents_of(request)
        principal = principal_of(request)
        _page_wanted(request)
        fields = await _form_or_json(request)
        if _via_api_key(request):
            key = idempotency.check_client(request.headers.get("idempotency-key"), principal.name)
        else:
            key = idempotency.check_minted(runtime.keys, spec.name, fields.get("idempotency_key"))
        reason = _reason(fields, incidents.settings.reason_min_chars)
        ctx = Context(
            runtime, incidents, principal.name, reason, target_of(request), key, incidents.clock()
        )
        state = request.scope.get("state", {})
        address = request.client.host if request.client else None
        caller = Caller(principal.role, state.get("request_id"), address)
        outcome, replayed = await perform(spec, ctx, caller)
        return _answer(request, spec, outcome, replayed)

    return endpoint


def action_routes() -> list[RouteSpec]:
    routes = []
    for spec in ACTIONS:
        path = f"/actions/{spec.name}"
        name = spec.name.replace("-", "_")
        routes.append(
            RouteSpec(
                path,
                f"action_{name}",
                confirm_page(spec),
                spec.permission,
                "html",
                f"{spec.title}: what it will do (changes nothing)",
                params=TARGET_PARAMS,
                tags=TAGS,
                alternatives={"application/json": CONFIRMATION_SCHEMA},
            )
        )
        routes.append(
            RouteSpec(
                path,
                f"action_{name}_run",
                run_action(spec),
                spec.permission,
                "html",
                f"{spec.title}: run it (once per idempotency key)",
                methods=("POST",),
                params=TARGET_PARAMS,
                tags=TAGS,
                alternatives={"application/json": OUTCOME_SCHEMA},
                errors={
                    502: "Alertmanager answered with an error",
                    503: "Alertmanager is unreachable",
                },
                body={
                    "application/x-www-form-urlencoded": {"type": "object"},
                    "application/json": {"type": "object"},
                },
            )
        )
    return routes
