"""The OpenAPI 3.1 document, generated from the route specs: every route, its parameters,
and a schema for every JSON response (problem documents included)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from api.problems import PROBLEM_MEDIA_TYPE, PROBLEM_SCHEMA
from api.routing import RouteSpec

HTML = {"text/html": {"schema": {"type": "string"}}}
PROBLEM = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
STARLETTE_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def _error(spec: RouteSpec, description: str) -> dict[str, Any]:
    if spec.html and "application/json" in spec.alternatives:  # pages for people, JSON for keys
        return {"description": description, "content": {**HTML, **PROBLEM}}
    return {"description": description, "content": HTML if spec.html else PROBLEM}


def _success(spec: RouteSpec) -> dict[str, Any]:
    if spec.kind == "json":
        content: dict[str, Any] = {"application/json": {"schema": dict(spec.schema or {})}}
    elif spec.kind == "csv":
        content = {"text/csv": {"schema": {"type": "string"}}}
    elif spec.kind == "text":  # an event stream's schema is that of each event
        text = dict(spec.schema) if spec.schema else {"type": "string"}
        content = {spec.media_type or "text/plain": {"schema": text}}
    else:
        content = dict(HTML)
    for media, schema in spec.alternatives.items():
        content[media] = {"schema": dict(schema)}
    return {"description": "success", "content": content}


def _responses(spec: RouteSpec) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if spec.kind == "form":
        responses["303"] = {"description": "done; on to the next page"}
    else:
        responses[str(spec.status)] = _success(spec)
    if spec.params or spec.body:
        responses["400"] = _error(spec, "a parameter is malformed")
    if spec.permission is not None:
        responses["401"] = _error(spec, "not signed in, or a bad API key")
        responses["403"] = _error(spec, "the role lacks the permission")
        responses["429"] = _error(spec, "rate limit exceeded")
        responses["503"] = _error(spec, "the database is unavailable or the query took too long")
        if spec.html and "GET" in spec.methods:
            responses["303"] = {"description": "not signed in: to the sign-in page"}
    if any(p.location == "path" for p in spec.params):
        responses["404"] = _error(spec, "no such record")
    if spec.kind == "form":
        responses["401"] = _error(spec, "wrong credentials, or not signed in")
        responses["429"] = _error(spec, "too many attempts")
    if spec.body or spec.methods != ("GET",):
        responses["403"] = _error(spec, "the role lacks the permission, or a CSRF failure")
        responses["413"] = _error(spec, "request body too large")
        responses["415"] = _error(spec, "unsupported body")
        if spec.permission is not None:
            responses["409"] = _error(spec, "the record's state does not allow it")
    for status, description in spec.errors.items():
        responses[str(status)] = _error(spec, description)
    if spec.name == "readyz":
        responses["503"] = {"description": "not ready", "content": PROBLEM}
    return responses


def _operation(spec: RouteSpec, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": spec.name if method == spec.methods[0] else f"{spec.name}_{method.lower()}",
        "summary": spec.summary,
        "tags": list(spec.tags),
        "parameters": [
            {
                "name": p.name,
                "in": p.location,
                "required": p.required or p.location == "path",
                "schema": dict(p.schema),
                **({"description": p.description} if p.description else {}),
                **({"style": "form", "explode": True} if p.schema.get("type") == "array" else {}),
            }
            for p in spec.params
        ],
        "responses": _responses(spec),
    }
    if spec.body:
        operation["requestBody"] = {
            "required": True,
            "content": {media: {"schema": dict(schema)} for media, schema in spec.body.items()},
        }
    if spec.permission is None:
        operation["security"] = []
    else:
        operation["x-permission"] = spec.permission
    return operation


def build_document(specs: Sequence[RouteSpec]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for spec in specs:
        path = STARLETTE_CONVERTER.sub(r"{\1}", spec.path)
        for method in spec.methods:
            paths.setdefault(path, {})[method.lower()] = _operation(spec, method)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "opsdeck drilldown API",
            "version": "1",
            "description": (
                "The pages Grafana links into, as JSON for programs and HTML for people. "
                "PII is masked unless an audited unmask grant says otherwise; payment and API "
                "views show live mode unless livemode=false or livemode=all."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {"Problem": PROBLEM_SCHEMA},
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "opsk_... API key"},
                "session": {"type": "apiKey", "in": "cookie", "name": "opsdeck_session"},
            },
        },
        "security": [{"apiKey": []}, {"session": []}],
    }
