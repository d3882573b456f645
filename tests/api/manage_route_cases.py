"""Users and API keys in the route x role test (tests/api/test_route_roles.py): a real user
behind every user route, a key of the asking user behind every key route (another user's
key is not theirs to see), the query each change names, and a valid confirmed POST."""

from __future__ import annotations

import re
import uuid
from typing import Any, Protocol

import httpx

from api.rbac import Role
from api.routing import RouteSpec
from tests.incidents.actions_client import post_change

TARGET = "matrix-target"
USER_ROUTES = (
    "user",
    "user_role",
    "user_disable",
    "user_enable",
    "user_password",
    "user_totp",
    "user_sessions",
)
KEY_ROUTES = ("api_key", "api_key_revoke", "api_key_rotate", "api_key_limits")
QUERIES = {
    "user_add": "username=matrix-new&role=viewer",
    "user_role": "role=viewer",
    "api_key_create": "name=matrix&scope=metrics.read",
    "api_key_limits": "rate_limit=10",
}


class Api(Protocol):
    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]: ...

    def user(self, role: Role, name: str | None = None, *, two_factor: bool = False) -> str: ...

    def api_key(
        self,
        role: Role,
        scopes: list[str] | None = None,
        name: str = "test",
        user: str | None = None,
    ) -> str: ...


def _name(spec: RouteSpec) -> str:
    return spec.name.removesuffix("_run")


def _new_key_id(api: Api, role: Role) -> str:
    token = api.api_key(role, name="matrix", user=api.user(role))
    found = api.sql("SELECT id FROM ops.api_keys WHERE prefix = %s", (token.split("_")[1],))
    return str(found[0][0])


def manage_samples(api: Api) -> dict[str, str]:
    """The user every user route acts on (a viewer, so no change locks anyone out), and a
    key for the key routes (replaced by one of the asking user in :func:`manage_path`)."""
    target = api.sql(
        "SELECT id FROM ops.users WHERE username = %s", (api.user(Role.VIEWER, TARGET),)
    )
    key = _new_key_id(api, Role.VIEWER)
    return dict.fromkeys(USER_ROUTES, str(target[0][0])) | dict.fromkeys(KEY_ROUTES, key)


def manage_query(spec: RouteSpec) -> str | None:
    return QUERIES.get(_name(spec))


def manage_path(api: Api, spec: RouteSpec, path: str, principal: str) -> str:
    """``path`` with a key of the asking principal's user (the role's user, whose sessions
    and keys the test uses), and a new user name for each added user."""
    name = _name(spec)
    if name in KEY_ROUTES and principal != "anonymous":
        key = _new_key_id(api, Role(principal.split("/", maxsplit=1)[0]))
        return re.sub(r"^/api-keys/\d+", f"/api-keys/{key}", path)
    if name == "user_add":
        return path.replace("matrix-new", f"matrix-{uuid.uuid4().hex[:10]}")
    return path


async def manage_request(
    api: Api, client: httpx.AsyncClient, spec: RouteSpec, method: str, path: str, token: str
) -> httpx.Response | None:
    """The confirmed POST of a user or key change; None for other routes."""
    name = _name(spec)
    if method != "POST" or not name.startswith(("user_", "api_key_")):
        return None
    fields = {"reason": "route matrix", "password": ""}
    return await post_change(client, path, token, fields)
