"""Route x role: every route of the route table, as every role (by session and by API key)
and unauthenticated, is allowed exactly when the permission table says so.

The cases are generated from the route table and the permission table, so a new route or
a new permission is covered without touching this file."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.routing import Route

from api.app import route_specs
from api.rbac import PERMISSIONS, ROLES, Role, allowed
from api.routing import RouteSpec
from tests.api.conftest import PASSWORD, Harness, csrf_token
from tests.api.manage_route_cases import manage_path, manage_request, manage_samples
from tests.api.route_paths import route_path, route_samples
from tests.finance.route_cases import change_request
from tests.incidents.route_cases import incident_request
from tests.webhooks.route_cases import webhook_request

pytestmark = pytest.mark.anyio

SPECS = route_specs()
PRINCIPALS = [
    *(f"{role.value}/{via}" for role in ROLES for via in ("session", "api_key")),
    "anonymous",
]
CASES = [(spec, method) for spec in SPECS for method in spec.methods]


def _case_id(case: tuple[RouteSpec, str]) -> str:
    return f"{case[1]} {case[0].path}"


async def test_every_route_comes_from_the_route_table(api: Harness) -> None:
    served = {
        (r.path, tuple(sorted(r.methods or ()))) for r in api.app.routes if isinstance(r, Route)
    }
    specified = {
        (s.path, tuple(sorted({*s.methods, *(("HEAD",) if "GET" in s.methods else ())})))
        for s in SPECS
    }
    assert served == specified
    assert len(api.app.routes) == len(SPECS)
    for spec in SPECS:
        assert spec.permission is None or spec.permission in PERMISSIONS, spec.name


@pytest.fixture(scope="module")
def samples(api: Harness) -> dict[str, str]:
    """A real value for every path parameter, per route."""
    return route_samples(api) | manage_samples(api)


async def _client(api: Harness, principal: str) -> httpx.AsyncClient:
    if principal == "anonymous":
        return api.client()
    role, via = principal.split("/")
    if via == "session":
        return await api.session_client(Role(role))
    return api.key_client(Role(role))


async def _request(
    api: Harness, client: httpx.AsyncClient, spec: RouteSpec, method: str, path: str
) -> httpx.Response:
    if method == "GET":
        return await client.get(path)
    token = await csrf_token(client)
    for special in (webhook_request, incident_request, change_request, manage_request):
        response = await special(api, client, spec, method, path, token)
        if response is not None:
            return response
    if spec.name == "login":
        form = {
            "username": api.user(Role.VIEWER, "matrix-login"),
            "password": PASSWORD,
            "csrf_token": token,
        }
        return await client.post(path, data=form)
    if spec.name == "preferences_save":
        return await client.post(path, data={"time_zone": "Europe/Berlin", "csrf_token": token})
    grant: dict[str, Any] = {
        "subject_type": "customer",
        "subject_id": "1",
        "reason": "route matrix test",
    }
    if spec.kind == "form":
        return await client.post(path, data={**grant, "csrf_token": token})
    return await client.post(path, json=grant, headers={"X-CSRF-Token": token})


def _expected(spec: RouteSpec, principal: str) -> str:
    if spec.permission is None:
        return "allowed"
    if principal == "anonymous":
        return "sign-in page" if spec.html and spec.methods == ("GET",) else "unauthenticated"
    return (
        "allowed"
        if allowed(Role(principal.split("/", maxsplit=1)[0]), spec.permission)
        else "forbidden"
    )


def _outcome(response: httpx.Response) -> str:
    if response.status_code == 303 and response.headers["location"].startswith("/login?next="):
        return "sign-in page"
    if response.status_code < 400:
        return "allowed"
    return {401: "unauthenticated", 403: "forbidden"}.get(response.status_code, "failed")


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
async def test_route_as_role(
    api: Harness, samples: dict[str, str], case: tuple[RouteSpec, str], principal: str
) -> None:
    spec, method = case
    path = manage_path(api, spec, route_path(spec, samples), principal)
    async with await _client(api, principal) as client:
        response = await _request(api, client, spec, method, path)
    assert response.status_code < 500, response.text[:300]
    assert _outcome(response) == _expected(spec, principal), (
        f"{method} {spec.path} as {principal}: {response.status_code} {response.text[:200]}"
    )
