"""Every route refuses what it does not understand: a query parameter it does not declare,
and a value outside a declared parameter's enum, with a 400 that names the parameter (and,
for an unknown one, lists the accepted ones). Programs get a problem document, people the
same message on the error page.

The cases come from the route table, so a new route or parameter is covered by itself.
Requests are made with a super admin's API key, which passes every permission check, so
the answer is the route's own.
"""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest

from api.app import route_specs
from api.problems import PROBLEM_MEDIA_TYPE
from api.rbac import Role
from api.routing import Param, RouteSpec
from tests.api.conftest import Harness

pytestmark = pytest.mark.anyio

SPECS = route_specs()
UNKNOWN = "no_such_param"
BAD_VALUE = "no_such_value"
CASES = [(spec, method) for spec in SPECS for method in spec.methods]
ENUM_CASES = [
    (spec, spec.methods[0], param)
    for spec in SPECS
    for param in spec.params
    if param.location == "query" and param.choices is not None
]


def _case_id(case: Any) -> str:
    spec, method, *param = case
    return f"{method} {spec.path}" + (f" {param[0].name}" if param else "")


def _path(spec: RouteSpec) -> str:
    """A concrete path; the query is refused before the record is looked up."""
    return re.sub(r"\{\w+(:\w+)?\}", "1", spec.path)


@pytest.fixture(scope="module")
def token(api: Harness) -> str:
    return api.api_key(Role.SUPER_ADMIN)


async def _send(api: Harness, token: str, method: str, url: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    async with api.client(headers=headers) as client:
        return await client.request(method, url, json={} if method != "GET" else None)


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    """The problem document, or None for an error page (whose text is checked instead)."""
    media = response.headers["content-type"].split(";")[0]
    if media == PROBLEM_MEDIA_TYPE:
        found: dict[str, Any] = response.json()
        return found
    assert media == "text/html", media
    return None


def _accepted(spec: RouteSpec) -> list[str]:
    return [p.name for p in spec.params if p.location == "query"]


@pytest.mark.parametrize("case", CASES, ids=_case_id)
async def test_an_unknown_query_parameter_is_refused_naming_it(
    api: Harness, token: str, case: tuple[RouteSpec, str]
) -> None:
    spec, method = case
    response = await _send(api, token, method, f"{_path(spec)}?{UNKNOWN}=1")
    assert response.status_code == 400, (spec.path, response.status_code, response.text[:300])
    problem = _problem(response)
    if problem is None:  # a page for people: the same message, and the accepted parameters
        page = html.unescape(response.text)
        assert UNKNOWN in page
        assert all(name in page for name in _accepted(spec)), page[-2000:]
        return
    assert [p["name"] for p in problem["invalid_params"]] == [UNKNOWN]
    assert problem["accepted_params"] == _accepted(spec)
    assert UNKNOWN in problem["detail"]


@pytest.mark.parametrize("case", ENUM_CASES, ids=_case_id)
async def test_an_unknown_enum_value_is_refused_naming_it(
    api: Harness, token: str, case: tuple[RouteSpec, str, Param]
) -> None:
    spec, method, param = case
    response = await _send(api, token, method, f"{_path(spec)}?{param.name}={BAD_VALUE}")
    assert response.status_code == 400, (spec.path, response.status_code, response.text[:300])
    choices = param.choices or ()
    problem = _problem(response)
    if problem is None:
        page = html.unescape(response.text)
        assert param.name in page
        assert BAD_VALUE in page
        assert all(choice in page for choice in choices)
        return
    (reason,) = [p["reason"] for p in problem["invalid_params"] if p["name"] == param.name]
    assert BAD_VALUE in reason
    assert all(choice in reason for choice in choices), reason


async def test_declared_parameters_and_grafana_variables_are_accepted(
    api: Harness, token: str
) -> None:
    """What the route declares passes the check: Grafana's organisation and variables (with
    ``$__all``), a multi-value mode variable, and an empty value from a filter form."""
    query = "orgId=1&var-status=$__all&var-psp=stripe&var-livemode=true,false&currency="
    response = await _send(api, token, "GET", f"/api/v1/payments?{query}")
    assert response.status_code == 200, response.text[:300]
    assert response.json()["mode"] == "all"


def test_every_list_route_declares_grafana_variables_for_its_filters() -> None:
    lists = [s for s in SPECS if s.name.endswith("_list")]
    assert lists
    for spec in lists:
        names = set(_accepted(spec))
        filters = {n for n in names if not n.startswith("var-")} - {
            "from",
            "to",
            "timezone",
            "sort",
            "order",
            "limit",
            "cursor",
            "orgId",
        }
        assert {f"var-{n}" for n in filters} <= names, spec.path
