"""The users' pages (``users.manage``): the list, with the form that adds a user, and a
user's page, with the forms that open each change's confirmation. Both answer JSON to API
keys and JSON clients."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.confirmation import page_wanted
from api.drilldowns.render import jsonable
from api.manage import user_changes, user_store
from api.pages import render
from api.rbac import ROLES
from api.routing import RouteSpec, runtime_of

_WHEN = {"type": "string", "format": "date-time"}
_MAYBE_WHEN = {"anyOf": [_WHEN, {"type": "null"}]}
FIELDS = (
    "id",
    "username",
    "role",
    "disabled_at",
    "two_factor",
    "last_sign_in_at",
    "created_at",
    "updated_at",
    "active_keys",
)
USER_SCHEMA = {
    "type": "object",
    "required": list(FIELDS),
    "properties": {
        "id": {"type": "integer"},
        "username": {"type": "string"},
        "role": {"type": "string", "enum": [r.value for r in ROLES]},
        "disabled_at": _MAYBE_WHEN,
        "two_factor": {"type": "boolean"},
        "last_sign_in_at": _MAYBE_WHEN,
        "created_at": _WHEN,
        "updated_at": _WHEN,
        "active_keys": {"type": "integer"},
    },
}
USERS_SCHEMA = {
    "type": "object",
    "required": ["users"],
    "properties": {"users": {"type": "array", "items": USER_SCHEMA}},
}


def as_json(user: dict[str, Any]) -> dict[str, Any]:
    return {name: jsonable(user[name]) for name in FIELDS}


async def users_page(request: Request) -> Response:
    found = await user_store.users(runtime_of(request))
    if not page_wanted(request):
        return JSONResponse({"users": [as_json(u) for u in found]})
    return render(request, "users.html", {"users": found, "roles": ROLES})


async def user_page(request: Request) -> Response:
    user = await user_store.user(runtime_of(request), user_changes.user_id(request))
    if not page_wanted(request):
        return JSONResponse(as_json(user))
    return render(request, "user.html", {"user": user, "roles": ROLES})


def routes() -> list[RouteSpec]:
    return [
        RouteSpec(
            "/users",
            "users",
            users_page,
            user_changes.MANAGE,
            "html",
            "Users: role, access, second factor, last sign-in; and the form to add one",
            tags=user_changes.TAGS,
            alternatives={"application/json": USERS_SCHEMA},
        ),
        # Before /users/{id}: "new" is not an id.
        *user_changes.routes(),
        RouteSpec(
            "/users/{id}",
            "user",
            user_page,
            user_changes.MANAGE,
            "html",
            "A user, and the forms that change them",
            params=(user_changes.ID,),
            tags=user_changes.TAGS,
            alternatives={"application/json": USER_SCHEMA},
            errors={404: "no such user"},
        ),
    ]
