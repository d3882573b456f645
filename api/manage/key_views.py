"""The API key pages (``api_keys.manage``): your keys (a super admin: everyone's, or one
user's), with the form that makes one; and a key's page, with its usage per day and the
forms that revoke, rotate and limit it. Secrets are never on these pages: only prefixes.
Both answer JSON to API keys and JSON clients."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.confirmation import page_wanted
from api.drilldowns.render import jsonable
from api.manage import key_changes, key_store
from api.manage.key_changes import OWNER_LIMIT
from api.pages import render
from api.problems import Problem
from api.routing import RouteSpec, principal_of, runtime_of
from api.signin import form_field

USAGE_DAYS = 30  # days of usage a key's page shows
FIELDS = (
    "id",
    "prefix",
    "name",
    "username",
    "role",
    "scopes",
    "created_by",
    "created_at",
    "last_used_at",
    "revoked_at",
    "expires_at",
    "rate_limit_per_minute",
    "replaced_by",
)
KEY_SCHEMA = {
    "type": "object",
    "required": [*FIELDS, "status"],
    "properties": {
        "id": {"type": "integer"},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "status": {"type": "string", "enum": ["active", "expired", "revoked"]},
    },
}
KEYS_SCHEMA = {
    "type": "object",
    "required": ["keys"],
    "properties": {"keys": {"type": "array", "items": KEY_SCHEMA}},
}
KEY_PAGE_SCHEMA = {
    "type": "object",
    "required": ["key", "usage"],
    "properties": {
        "key": KEY_SCHEMA,
        "usage": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["day", "calls", "client_errors", "server_errors"],
            },
        },
    },
}


def status(key: dict[str, Any]) -> str:
    if key["revoked_at"] is not None:
        return "revoked"
    return "expired" if key["expired"] else "active"


def as_json(key: dict[str, Any]) -> dict[str, Any]:
    return {**{name: jsonable(key[name]) for name in FIELDS}, "status": status(key)}


async def _whose(request: Request) -> int | None:
    """Whose keys the list shows: the principal's; a super admin's list shows everyone's,
    or those of ``user``. Anyone else naming another user is refused."""
    principal, runtime = principal_of(request), runtime_of(request)
    wanted = form_field(request.query_params, "user", OWNER_LIMIT).strip()
    if not key_store.sees_all(principal):
        if wanted:
            own = await key_store.find_user(runtime, user_id=principal.person)
            if wanted.lower() != str(own["username"]).lower():
                raise Problem(403, "you see only your own API keys")
        return principal.person
    if not wanted:
        return None
    return int((await key_store.find_user(runtime, username=wanted))["id"])


async def keys_page(request: Request) -> Response:
    found = await key_store.keys(runtime_of(request), await _whose(request))
    if not page_wanted(request):
        return JSONResponse({"keys": [as_json(k) for k in found]})
    principal = principal_of(request)
    context = {
        "keys": found,
        "status": status,
        "scopes": sorted(principal.permissions),
        "sees_all": key_store.sees_all(principal),
        "user": request.query_params.get("user", ""),
    }
    return render(request, "api_keys.html", context)


async def key_page(request: Request) -> Response:
    runtime = runtime_of(request)
    key = await key_store.key(runtime, principal_of(request), key_changes.key_id(request))
    usage = await key_store.usage(runtime, key["id"], USAGE_DAYS)
    if not page_wanted(request):
        rows = [{k: jsonable(v) for k, v in row.items()} for row in usage]
        return JSONResponse({"key": as_json(key), "usage": rows})
    context = {
        "key": key,
        "status": status(key),
        "usage": usage,
        "usage_days": USAGE_DAYS,
        "flush_seconds": runtime.api.key_usage_flush_seconds,
        "default_rate": runtime.api.requests_per_minute,
    }
    return render(request, "api_key.html", context)


def routes() -> list[RouteSpec]:
    return [
        RouteSpec(
            "/api-keys",
            "api_keys",
            keys_page,
            key_changes.MANAGE,
            "html",
            "API keys: yours (a super admin's: everyone's, or a user's), and the form to make one",
            params=(key_changes.OWNER,),
            tags=key_changes.TAGS,
            alternatives={"application/json": KEYS_SCHEMA},
            errors={403: "another user's keys", 404: "no such user"},
        ),
        *key_changes.routes(),
        RouteSpec(
            "/api-keys/{id}",
            "api_key",
            key_page,
            key_changes.MANAGE,
            "html",
            f"An API key: its scopes, limits and requests per day (the last {USAGE_DAYS} days)",
            params=(key_changes.ID,),
            tags=key_changes.TAGS,
            alternatives={"application/json": KEY_PAGE_SCHEMA},
            errors={404: "no such API key (or not yours)"},
        ),
    ]
