"""The API with incidents enabled (a known Alertmanager token), its engine loop off: tests
drive the escalation clock by hand."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from core.settings import IncidentSettings, Settings
from tests.api.conftest import (
    ALERTMANAGER_TOKEN,
    Harness,
    alertmanager_url,
    anyio_backend,
    api_redis,
    api_settings,
    running,
)
from tests.conftest import scratch_database
from tests.incidents.fakes import Fake, https_fake

__all__ = ["alertmanager_url", "anyio_backend", "api_redis"]

AM_TOKEN = ALERTMANAGER_TOKEN


def incident_settings(**values: Any) -> IncidentSettings:
    defaults: dict[str, Any] = {
        "alertmanager_token": SecretStr(AM_TOKEN),
        "engine_enabled": False,
        "pagerduty_routing_key": SecretStr("R0PSDECKTEST00000000000000000000"),
    }
    return IncidentSettings(**{**defaults, **values})


def faked_settings(server: Fake, **values: Any) -> IncidentSettings:
    """Slack and PagerDuty pointed at the local HTTPS fake."""
    return incident_settings(
        slack_bot_token=SecretStr("xoxb-test-token"),
        slack_api_url=server.base + "/api",
        pagerduty_events_url=server.base,
        **values,
    )


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[tuple[Fake, httpx.AsyncClient]]:
    """A local HTTPS fake of Slack, PagerDuty, Twilio, Opsgenie and Grafana, and a client
    that trusts it."""
    with https_fake() as (server, client):
        async with client:
            yield server, client


async def open_by_hook(api: Harness, name: str) -> int:
    """An incident opened the way Alertmanager opens them."""
    body = notification(f"group-{name}", alert(name, uuid.uuid4().hex[:16]))
    async with api.client() as client:
        answer = await client.post(
            "/hooks/alertmanager", json=body, headers={"Authorization": f"Bearer {AM_TOKEN}"}
        )
    return int(answer.json()["incident"])


def settings_for(db: str, redis_url: str, alertmanager_url: str, **values: Any) -> Settings:
    base = api_settings(db, redis_url, alertmanager_url)
    return base.model_copy(update={"incidents": incident_settings(**values)})


@pytest.fixture(scope="module")
def api_db(admin_url: str, template_db: str) -> Iterator[str]:
    """A migrated database without history: incidents need none, and it is quick to make."""
    with scratch_database(admin_url, template_db) as url:
        yield url


@pytest.fixture(scope="module")
async def api(api_db: str, api_redis: str, alertmanager_url: str) -> AsyncIterator[Harness]:
    async with running(settings_for(api_db, api_redis, alertmanager_url)) as harness:
        yield harness


def alert(
    name: str, fingerprint: str, status: str = "firing", severity: str = "high"
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, "team": "platform"},
        "annotations": {
            "summary": f"{name} summary",
            "runbook_url": f"http://localhost:8000/runbooks/{name}.md",
            "actions": f"Acknowledge: http://localhost:8000/actions/acknowledge?alertname={name}",
        },
        "startsAt": "2026-11-22T10:00:00Z",
        "endsAt": "2026-11-22T11:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    }


def notification(group: str, *alerts: dict[str, Any]) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "opsdeck-api",
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": alerts[0]["labels"],
        "commonAnnotations": alerts[0]["annotations"],
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }
