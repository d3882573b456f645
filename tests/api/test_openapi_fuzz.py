"""Schemathesis against ``/openapi.json`` of a real server, authenticated as a super admin:
whatever it sends, nothing answers 5xx and every response matches the documented schema,
status and content type."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.accounts import Admin, add_user, create_key
from api.app import route_specs
from api.openapi import build_document
from api.rbac import Role
from tests.api.conftest import PASSWORD, SECRET, serving
from tests.conftest import REPO, opsdeck_env, suite_box

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live(api_db: str, api_redis: str) -> Iterator[tuple[str, str]]:
    with psycopg.connect(api_db) as conn:
        admin = Admin("test", conn, None, suite_box())
        add_user(admin, "fuzzer", Role.SUPER_ADMIN, PASSWORD, two_factor=True)
        token, _ = create_key(admin, "fuzzer", "fuzzer", Role.SUPER_ADMIN, [])
    env = opsdeck_env(
        DATABASE_URL=api_db,
        REDIS_URL=api_redis,
        OPSDECK_API__SECRET_KEY=SECRET,
        OPSDECK_API__REQUESTS_PER_MINUTE="10000000",
        OPSDECK_API__LOGIN_USER_FAILURES_BEFORE_BACKOFF="10000000",
        OPSDECK_API__LOGIN_ADDRESS_FAILURES_BEFORE_BACKOFF="10000000",
        OPSDECK_API__LOGIN_ATTEMPTS_PER_ADDRESS="10000000",
        OPSDECK_API__EXPORTS_PER_PRINCIPAL="1000",
        OPSDECK_API__EXPORTS_TOTAL="1000",
        OPSDECK_WEBHOOKS__INBOUND_REJECTIONS_PER_ADDRESS="10000000",
    )
    log = REPO / "test-artifacts" / "api-fuzz.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with serving(env, log) as base:
        yield base, token


# The document the server publishes at /openapi.json (test_the_fuzzed_document_is_served
# checks they are the same); loaded at collection so each operation is its own test.
DOCUMENT = build_document(route_specs())
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_fuzzed_document_is_served(live: tuple[str, str]) -> None:
    base, _ = live
    assert httpx.get(f"{base}/openapi.json").json() == json.loads(json.dumps(DOCUMENT))


def _send(request: dict[str, Any]) -> httpx.Response:
    """The request schemathesis built, sent with httpx: its own transport relies on
    ``requests``, which the urllib3-future that grafana-client pulls in breaks."""
    body: dict[str, Any] = {}
    if "json" in request:
        body["json"] = request["json"]
    if "data" in request:
        data = request["data"]
        body["data" if isinstance(data, dict) else "content"] = data
    return httpx.request(
        request["method"],
        request["url"],
        params=request.get("params"),
        headers=request["headers"],
        cookies=request.get("cookies"),
        timeout=60,
        **body,
    )


@schema.parametrize()
@settings(
    max_examples=5,  # x 108 operations; the suite's slowest part at 15
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_no_5xx_and_every_response_matches_its_schema(
    case: schemathesis.Case[Any], live: tuple[str, str]
) -> None:
    base, token = live
    request = case.as_transport_kwargs(base_url=base, headers={"Authorization": f"Bearer {token}"})
    response = _send(request)
    case.validate_response(Response.from_httpx(response, verify=True), checks=CHECKS)
