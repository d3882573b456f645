"""``opsdeck_incidents_open`` on the API's /metrics: served from counts refreshed in the
background, so it follows incidents opened, acknowledged and resolved (by this process at
once, by another within the refresh interval), and a scrape during a PostgreSQL outage
still answers with the last counts and the request metrics. The page is one rendering by
prometheus_client: promtool accepts it and label values are escaped."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.incidents.metrics import SEVERITIES
from api.rbac import Role
from tests.api.conftest import Harness, running
from tests.exporters.tcp_proxy import TcpProxy
from tests.incidents.actions_client import click
from tests.incidents.conftest import AM_TOKEN, alert, notification, settings_for

pytestmark = pytest.mark.anyio
REFRESH = 0.3  # seconds between background recounts in these tests
AUTH = {"Authorization": f"Bearer {AM_TOKEN}"}
TRUTH = "SELECT severity, count(*) FROM ops.incidents WHERE resolved_at IS NULL GROUP BY severity"


@pytest.fixture(scope="module")
async def api(api_db: str, api_redis: str, alertmanager_url: str) -> AsyncIterator[Harness]:
    settings = settings_for(
        api_db, api_redis, alertmanager_url, open_counts_refresh_seconds=REFRESH
    )
    async with running(settings) as harness:
        yield harness


def _truth(api: Harness) -> dict[str, float]:
    counts = dict.fromkeys(SEVERITIES, 0.0)
    counts.update({str(s): float(n) for s, n in api.sql(TRUTH)})
    return counts


def _families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _open(text: str) -> dict[str, float]:
    samples = _families(text).get("opsdeck_incidents_open", {})
    return {dict(labels)["severity"]: value for labels, value in samples.items()}


async def _scrape(client: httpx.AsyncClient) -> str:
    page = await client.get("/metrics")
    assert page.status_code == 200, page.text[:300]
    return page.text


async def _hook(client: httpx.AsyncClient, name: str, status: str, severity: str) -> int | None:
    """Alertmanager's notification for the group ``name`` (one alert)."""
    body = notification(f"group-{name}", alert(name, f"fp-{name}", status, severity))
    answer = await client.post("/hooks/alertmanager", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    incident: int | None = answer.json()["incident"]
    return incident


async def _eventually_equal(client: httpx.AsyncClient, api: Harness, within: float) -> None:
    deadline = time.monotonic() + within
    while (seen := _open(await _scrape(client))) != (expected := _truth(api)):
        assert time.monotonic() < deadline, (seen, expected)
        await anyio.sleep(0.05)


async def test_follows_incidents_opened_acknowledged_and_resolved(api: Harness) -> None:
    name = f"OpenGauge{uuid.uuid4().hex[:8]}"
    async with api.client() as client:
        before = _open(await _scrape(client))
        assert before == _truth(api)
        assert set(SEVERITIES) <= set(before)  # none open still reads 0, not "no data"
        incident = await _hook(client, name, "firing", "critical")
        # This process's own change is counted by its next scrape.
        assert _open(await _scrape(client)) == {**before, "critical": before["critical"] + 1}
    async with await api.session_client(Role.OPS, "ops-gauge") as ops:
        done = await click(ops, f"/actions/acknowledge?alertname={name}")
        assert done.status_code == 200, done.text
        assert api.sql("SELECT status FROM ops.incidents WHERE id = %s", (incident,)) == [
            ("acknowledged",)
        ]
        assert _open(await _scrape(ops))["critical"] == before["critical"] + 1  # still open
    async with api.client() as client:
        await _hook(client, name, "resolved", "critical")
        assert _open(await _scrape(client)) == before
        # A change another replica made (here: straight in the database) shows up within
        # the refresh interval.
        other = await _hook(client, f"{name}-other", "firing", "medium")
        api.sql("UPDATE ops.incidents SET resolved_at = now() WHERE id = %s", (other,))
        await _eventually_equal(client, api, within=REFRESH * 10)
        assert _open(await _scrape(client)) == before


def _through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))


async def _until_unready(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 30
    while (await client.get("/readyz")).status_code != 503:
        assert time.monotonic() < deadline, "the API still reads the database"
        await anyio.sleep(0.1)


@pytest.mark.slow
async def test_scrape_during_a_database_outage_keeps_the_last_counts(
    api_db: str, api_redis: str, alertmanager_url: str
) -> None:
    parts = urlsplit(api_db)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    settings = settings_for(
        _through(proxy, api_db), api_redis, alertmanager_url, open_counts_refresh_seconds=REFRESH
    )
    try:
        async with running(settings) as harness, harness.client() as client:
            await _hook(client, f"Outage{uuid.uuid4().hex[:8]}", "firing", "high")
            counts = _open(await _scrape(client))
            assert counts == _truth(harness)
            proxy.cut()
            await _until_unready(client)
            await anyio.sleep(REFRESH * 3)  # background recounts fail meanwhile
            page = await client.get("/metrics")
            assert page.status_code == 200, page.text[:300]
            assert _open(page.text) == counts
            requests = _families(page.text)["opsdeck_api_http_requests_total"]
            hook = (("method", "POST"), ("route", "/hooks/alertmanager"), ("status_class", "2xx"))
            assert requests[hook] == 1.0
            assert requests[(("method", "GET"), ("route", "/readyz"), ("status_class", "5xx"))] > 0
    finally:
        proxy.close()


async def test_label_values_are_escaped(api: Harness) -> None:
    """Severities are what Alertmanager's labels say: free text, quotes and backslashes
    included, each escaped in the page and read back unchanged."""
    severity = 'sev "quoted" \\ back\\slash'
    async with api.client() as client:
        await _hook(client, f"Escape{uuid.uuid4().hex[:8]}", "firing", severity)
        text = await _scrape(client)
    assert 'opsdeck_incidents_open{severity="sev \\"quoted\\" \\\\ back\\\\slash"} 1.0' in text
    assert _open(text)[severity] == 1.0
    assert _open(text) == _truth(api)


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian prometheus) not installed"
)
async def test_page_passes_promtool(api: Harness) -> None:
    async with api.client() as client:
        await _hook(client, f"Promtool{uuid.uuid4().hex[:8]}", "firing", 'odd "severity"')
        text = await _scrape(client)
    assert "opsdeck_incidents_open{" in text
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
