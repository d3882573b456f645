"""The action routes: ``GET /actions/<name>`` (the confirmation page, or its JSON for API
keys; never changes anything) and ``POST /actions/<name>`` (runs the effect once per
idempotency key)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.confirmation import OUTCOME_SCHEMA, answer, page_wanted, submission
from api.incidents.actions import requests as idempotency
from api.incidents.actions.catalog import ACTIONS
from api.incidents.actions.perform import Caller, perform
from api.incidents.actions.spec import ActionSpec, Context, Input, Target
from api.incidents.context import Incidents, incidents_of
from api.pages import render
from api.problems import invalid
from api.routing import Param, RouteSpec, principal_of, runtime_of

TAGS = ("actions",)
CONFIRMATION_SCHEMA = {
    "type": "object",
    "required": ["action", "target", "will", "counts", "items", "idempotency_key"],
    "properties": {
        "action": {"type": "string"},
        "target": {"type": "object"},
        "will": {"type": "string"},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "items": {"type": "array", "items": {"type": "string"}},
        "idempotency_key": {"type": "string"},
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "label", "required"],
                "properties": {
                    "name": {"type": "string"},
                    "label": {"type": "string"},
                    "required": {"type": "boolean"},
                    "choices": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
# Form fields every POST may carry besides the action's own.
FORM_FIELDS = ("csrf_token", "idempotency_key")
TARGET_PARAMS = (
    Param("alertname", {"type": "string", "maxLength": 200}, "the alert acted on"),
    Param("incident", {"type": "integer", "minimum": 1}, "the incident acted on"),
    Param("panel", {"type": "string", "maxLength": 200}, "the dashboard panel clicked"),
    Param("failure_code", {"type": "string", "maxLength": 100}, "payment failure code"),
    Param("template", {"type": "string", "maxLength": 100}, "partner notice template"),
    Param("booking", {"type": "integer", "minimum": 1}, "the booking acted on"),
    Param("transaction", {"type": "integer", "minimum": 1}, "the payment transaction acted on"),
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


def _id(values: Any, name: str) -> int | None:
    raw = _text(values, name, 19)
    if raw is not None and not (raw.isdigit() and int(raw) > 0):
        raise invalid(name, "a positive integer")
    return int(raw) if raw else None


def target_of(request: Request) -> Target:
    query = request.query_params
    return Target(
        alertname=_text(query, "alertname"),
        incident=_id(query, "incident"),
        booking=_id(query, "booking"),
        transaction=_id(query, "transaction"),
        panel=_text(query, "panel"),
        failure_code=_text(query, "failure_code", 100),
        template=_text(query, "template", 100),
        source=_text(query, "source", 50) or "api",
    )


def _choices(item: Input, incidents: Incidents) -> tuple[str, ...] | None:
    return item.choices(incidents) if item.choices is not None else None


def _described(spec: ActionSpec, incidents: Incidents) -> list[dict[str, Any]]:
    """The action's inputs as the confirmation page (and its JSON) offers them."""
    described = []
    for item in spec.inputs:
        entry: dict[str, Any] = {"name": item.name, "label": item.label, "required": item.required}
        choices = _choices(item, incidents)
        if choices is not None:
            entry["choices"] = list(choices)
        described.append(entry)
    return described


def _value(item: Input, raw: str, incidents: Incidents) -> Any:
    choices = _choices(item, incidents)
    parts = [p.strip() for p in raw.split(",")] if item.many else [raw.strip()]
    parts = [p for p in parts if p]
    for part in parts:
        if len(part) > item.max_length:
            raise invalid(item.name, f"at most {item.max_length} characters")
        if choices is not None and part not in choices:
            raise invalid(item.name, f"one of {', '.join(choices)}")
    if item.many:
        return sorted(set(parts))
    return parts[0] if parts else None


def inputs_of(spec: ActionSpec, fields: Mapping[str, str], incidents: Incidents) -> dict[str, Any]:
    """The action's inputs from the form or JSON body; a field the action does not take is
    refused, never ignored."""
    known = {*FORM_FIELDS, spec.reason_field, *(i.name for i in spec.inputs)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise invalid(
            unknown[0], f"not a field of {spec.name}; it takes {', '.join(sorted(known))}"
        )
    values = {}
    for item in spec.inputs:
        value = _value(item, fields.get(item.name, ""), incidents)
        if value is None and item.required:
            raise invalid(item.name, f"required: {item.description}")
        if value is not None:
            values[item.name] = value
    return values


def body_schema(spec: ActionSpec) -> dict[str, Any]:
    """The POST body of ``spec``: its reason (or note), its inputs, and the form's tokens."""
    properties: dict[str, Any] = {
        spec.reason_field: {"type": "string", "maxLength": 1000, "description": "say why"},
        **{i.name: i.schema() for i in spec.inputs},
    }
    required = [spec.reason_field, *(i.name for i in spec.inputs if i.required)]
    json_body = {"type": "object", "required": required, "properties": properties}
    form_properties = {**properties, **{f: {"type": "string"} for f in FORM_FIELDS}}
    form = {**json_body, "properties": form_properties}
    return {"application/x-www-form-urlencoded": form, "application/json": json_body}


def confirm_page(spec: ActionSpec) -> Any:
    async def endpoint(request: Request) -> Response:
        runtime, incidents = runtime_of(request), incidents_of(request)
        target = target_of(request)
        summary = await spec.summarize(runtime, incidents, target)
        key = idempotency.mint(runtime.keys, spec.name)
        if not page_wanted(request):
            body = {
                "action": spec.name,
                "target": target.as_dict(),
                "will": summary.will,
                "counts": dict(summary.counts),
                "items": list(summary.items),
                "idempotency_key": key,
                "inputs": _described(spec, incidents),
            }
            return JSONResponse(body)
        context = {
            "spec": spec,
            "target": target.as_dict(),
            "summary": summary,
            "key": key,
            "query": request.url.query,
            "inputs": _described(spec, incidents),
        }
        return render(request, "action.html", context)

    return endpoint


def run_action(spec: ActionSpec) -> Any:
    async def endpoint(request: Request) -> Response:
        runtime, incidents = runtime_of(request), incidents_of(request)
        sent = await submission(request, spec.name, spec.reason_field)
        inputs = inputs_of(spec, sent.fields, incidents)
        target = target_of(request)
        principal = principal_of(request)
        ctx = Context(
            runtime,
            incidents,
            sent.actor,
            sent.reason,
            target,
            sent.key,
            incidents.clock(),
            inputs,
            user_id=principal.person,
        )
        state = request.scope.get("state", {})
        address = request.client.host if request.client else None
        caller = Caller(principal.role, state.get("request_id"), address)
        outcome, replayed = await perform(spec, ctx, caller)
        return answer(request, spec.name, outcome, replayed, "action_done.html", {"spec": spec})

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
                body=body_schema(spec),
            )
        )
    return routes
