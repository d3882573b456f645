"""Safety around every response: security headers (CSP without inline script, framing only
by Grafana), request size limits, problem documents for every error, request ids in
responses and in the JSON logs, and the API's own metrics."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.drilldowns import views
from api.middleware.request_context import RequestIdFilter
from api.rbac import Role
from core.log_format import JsonFormatter
from tests.api.conftest import Harness, api_settings, running
from tests.conftest import REPO

pytestmark = pytest.mark.anyio


async def test_security_headers_everywhere(api: Harness) -> None:
    async with await api.session_client(Role.SUPER_ADMIN) as client:
        for path in ("/payments", "/api/v1/payments", "/nowhere", "/login", "/static/app.css"):
            headers = (await client.get(path)).headers
            csp = headers["content-security-policy"]
            assert "script-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert "unsafe-eval" not in csp
            assert "frame-ancestors 'none'" in csp
            assert headers["x-frame-options"] == "DENY"
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "no-referrer"
            assert headers["cache-control"] == "no-store"
        page = (await client.get("/payments")).text
        # Scripts only as same-origin files, never inline.
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.DOTALL)
        assert page.count("<script") == len(scripts)
        for attributes, body in scripts:
            assert re.fullmatch(r' src="/static/[a-z_-]+\.js" defer', attributes), attributes
            assert body == ""
            assert (await client.get(attributes.split('"')[1])).status_code == 200
        assert not re.search(r"<[^>]+\son[a-z]+=", page)  # no inline event handlers
        assert " style=" not in page
        assert "<style" not in page


async def test_only_grafana_may_frame_the_pages(api_db: str, api_redis: str) -> None:
    settings = api_settings(
        api_db, api_redis, grafana_origin="https://grafana.example.com:3000/d/x"
    )
    async with running(settings) as harness, harness.client() as client:
        headers = (await client.get("/login")).headers
    assert "frame-ancestors https://grafana.example.com:3000" in headers["content-security-policy"]
    assert "x-frame-options" not in headers


async def test_request_body_limit(api: Harness) -> None:
    limit = api.settings.api.max_body_bytes
    async with await api.session_client(Role.SUPER_ADMIN) as client:
        declared = await client.post("/api/v1/unmask", content=b"x" * (limit + 1))
        assert declared.status_code == 413
        assert declared.headers["content-type"] == "application/problem+json"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(limit // 1000 + 2):
                yield b"y" * 1000

        streamed = await client.post(
            "/api/v1/unmask",
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert streamed.status_code == 413


async def test_errors_are_problem_documents(api: Harness) -> None:
    async with api.key_client(Role.SUPER_ADMIN) as client:
        missing = await client.get("/api/v1/nowhere")
        assert missing.status_code == 404
        assert missing.json()["status"] == 404
        wrong_method = await client.delete("/api/v1/payments")
        assert wrong_method.status_code == 405
        assert "GET" in wrong_method.headers["allow"]
        bad = await client.get("/api/v1/payments?status=lost&limit=0")
        body = bad.json()
        assert bad.status_code == 400
        assert bad.headers["content-type"] == "application/problem+json"
        assert body["invalid_params"][0]["name"] in ("status", "limit")
        assert body["request_id"]
        for query in (
            "from=yesterday",
            "from=now&to=now-1h",
            "customer_id=12x",
            "livemode=maybe",
            "sort=email",
        ):
            assert (await client.get(f"/api/v1/payments?{query}")).status_code == 400, query
        assert (await client.get("/api/v1/payments/not-a-number")).status_code == 400
        assert (await client.get("/api/v1/payments/999999999")).status_code == 404
        page = await client.get("/payments?from=yesterday")
        assert page.status_code == 400
        assert page.headers["content-type"].startswith("text/html")


async def test_a_crash_is_a_problem_with_the_request_id(
    api: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(views, "fetch_page", broken)
    async with api.key_client(Role.SUPER_ADMIN) as client:
        response = await client.get("/api/v1/payments", headers={"X-Request-ID": "trace-me-123"})
    assert response.status_code == 500
    assert response.json()["request_id"] == "trace-me-123" == response.headers["x-request-id"]
    assert "boom" not in response.text
    assert "content-security-policy" in response.headers


async def test_a_slow_query_is_a_503(api_db: str, api_redis: str) -> None:
    """A drilldown query stuck behind a lock runs into the statement timeout; sign-in and
    everything else keep working."""
    settings = api_settings(api_db, api_redis, statement_timeout_seconds=2)
    with psycopg.connect(api_db) as blocker:
        blocker.execute("LOCK TABLE platform.api_logs IN ACCESS EXCLUSIVE MODE")
        async with running(settings) as harness, harness.key_client(Role.SUPER_ADMIN) as client:
            response = await client.get("/api/v1/api-logs?from=now-2d&q=timeout")
            assert (await client.get("/api/v1/incidents")).status_code == 200
        blocker.rollback()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["detail"].startswith("the query took too long")


async def test_request_ids_and_json_access_log(
    api: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="opsdeck.api.access")
    async with api.key_client(Role.SUPER_ADMIN) as client:
        given = await client.get("/api/v1/incidents", headers={"X-Request-ID": "abc.123"})
        assert given.headers["x-request-id"] == "abc.123"
        made = await client.get("/api/v1/incidents", headers={"X-Request-ID": "bad id\n"})
        assert made.headers["x-request-id"] != "bad id\n"
        assert len(made.headers["x-request-id"]) == 32
    record = next(r for r in caplog.records if getattr(r, "request_id", None) == "abc.123")
    RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter("api").format(record))
    assert line["request_id"] == "abc.123"
    assert line["route"] == "/api/v1/incidents"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["duration_ms"] >= 0
    assert line["principal"].startswith("super_admin-user (api-key:")
    assert line["level"] == "INFO"
    assert line["process"] == "api"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _requests(route: str, status_class: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    labels = {"method": "GET", "route": route, "status_class": status_class}
    return "opsdeck_api_http_requests_total", tuple(sorted(labels.items()))


async def test_metrics_count_requests_errors_and_durations(api: Harness) -> None:
    refunds = "/api/v1/refunds"
    async with api.key_client(Role.SUPER_ADMIN) as client:
        before = _samples((await client.get("/metrics")).text)
        await client.get(refunds)
        await client.get(f"{refunds}?limit=0")
        after = _samples((await client.get("/metrics")).text)
    assert after[_requests(refunds, "2xx")] == before[_requests(refunds, "2xx")] + 1
    assert after[_requests(refunds, "4xx")] == before.get(_requests(refunds, "4xx"), 0) + 1
    # Declared at start: an error ratio reads 0, not "no data", before the first error.
    assert after[_requests(refunds, "5xx")] == 0
    assert after[_requests("/bookings", "5xx")] == 0
    bucket = ("opsdeck_api_http_request_duration_seconds_count", (("route", refunds),))
    assert after[bucket] == before.get(bucket, 0) + 2
    assert ("opsdeck_api_http_requests_in_flight", ()) in after


async def test_health_and_readiness(api: Harness) -> None:
    async with api.client() as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_readiness_fails_without_redis(api_db: str) -> None:
    settings = api_settings(api_db, "redis://127.0.0.1:1/0")
    async with running(settings) as harness, harness.client() as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert "redis" in response.json()["detail"]


def test_the_api_refuses_to_start_without_a_secret_key(api_db: str) -> None:
    from tests.conftest import opsdeck_env, run_opsdeck

    result = run_opsdeck(
        "api",
        "--port",
        "1",
        env=opsdeck_env(DATABASE_URL=api_db, REDIS_URL="redis://127.0.0.1:1/0"),
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "opsdeck: OPSDECK_API__SECRET_KEY (api.secret_key): not set, and opsdeck api needs it; "
        "it signs session cookies, CSRF tokens and cursors "
        "(make one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
    ]


async def test_stored_markup_is_escaped(api: Harness) -> None:
    api.sql(
        "INSERT INTO platform.api_logs (request_id, started_at, method, path, route, status_code, duration_ms, "
        "livemode, error_message, account_id) VALUES ('req_<b>x', now(), 'GET', '/v1/x', '/v1/x', 400, 1, true, "
        "'<script>alert(1)</script>', 'acct_\"><i>')"
    )
    async with api.key_client(Role.SUPER_ADMIN) as client:
        listing = (await client.get("/api-logs?from=now-1h&status=400")).text
        detail = (await client.get("/api-logs/req_%3Cb%3Ex")).text
    for page in (listing, detail):
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<b>x" not in page
        assert '"><i>' not in page
    assert 'href="/api-logs/req_%3Cb%3Ex"' in listing


async def test_runbooks_are_served_to_anyone_signed_in(api: Harness) -> None:
    async with api.key_client(Role.VIEWER) as client:
        page = await client.get("/runbooks/ApiErrorRateHigh.md")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/markdown")
        assert page.text == (REPO / "runbooks" / "ApiErrorRateHigh.md").read_text()
        assert (await client.get("/runbooks/NoSuchAlert.md")).status_code == 404
        assert (await client.get("/runbooks/..%2Fpyproject.md")).status_code == 404
    async with api.client() as anonymous:
        assert (await anonymous.get("/runbooks/ApiErrorRateHigh.md")).status_code == 401


async def test_every_execution_is_planned_for_its_own_values(api: Harness) -> None:
    """psycopg prepares a query run five times; a generic plan would then ignore both the
    parameters and the search's SET LOCAL choice of plan. Both pools plan every execution."""
    for pool in (api.runtime.platform, api.runtime.ops):
        async with pool.connection() as conn:
            row = await (await conn.execute("SHOW plan_cache_mode")).fetchone()
        assert row == ("force_custom_plan",)
