"""Grafana annotations of actions: queued by the action, sent through grafana-client to a
local HTTPS Grafana fake (exact body and headers), retried while Grafana is unreachable or
failing (due when the schedule or a later Retry-After says), given up on a 4xx."""

from __future__ import annotations

import email.utils
import math
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from api.incidents.grafana_annotations import flush, sender
from api.rbac import Role
from opsdeck.embedded import free_port
from tests.api.conftest import Harness
from tests.incidents.actions_client import click
from tests.incidents.conftest import incident_settings
from tests.incidents.fakes import Fake, Reply

pytestmark = pytest.mark.anyio
TOKEN = "glsa_test_token"


def _pending(api: Harness) -> list[tuple[object, ...]]:
    return api.sql(
        "SELECT status, attempts, last_error IS NOT NULL FROM ops.grafana_annotations "
        "WHERE text LIKE 'Maintenance mode on by%%' ORDER BY id"
    )


async def test_annotations_wait_for_grafana_and_arrive_once(
    api: Harness, fake: tuple[Fake, httpx.AsyncClient]
) -> None:
    server = fake[0]
    settings = incident_settings(grafana_token=SecretStr(TOKEN), grafana_ca_file=server.ca_file)
    async with await api.session_client(Role.OPS) as client:
        assert (await click(client, "/actions/maintenance-on?source=grafana")).status_code == 200
    now = datetime.now(UTC)
    down = sender(settings, f"https://localhost:{free_port(0)}")
    up = sender(settings, server.base)
    assert down is not None
    assert up is not None
    async with await psycopg.AsyncConnection.connect(api.db_url, autocommit=True) as conn:
        await flush(conn, down, now, settings)
        assert _pending(api) == [("pending", 1, True)]
        server.on("/api/annotations", Reply(500, {"message": "internal"}))
        await flush(conn, up, now + timedelta(seconds=10), settings)
        assert _pending(api) == [("pending", 2, True)]
        await flush(conn, up, now + timedelta(seconds=20), settings)  # not due yet
        assert _pending(api) == [("pending", 2, True)]
        await flush(conn, up, now + timedelta(seconds=60), settings)
        assert _pending(api) == [("sent", 3, False)]
        await flush(conn, up, now + timedelta(hours=1), settings)
    posts = [s for s in server.seen if s.path == "/api/annotations"]
    assert len(posts) == 2  # the 500, then the one that arrived
    body, headers = posts[-1].body, posts[-1].headers
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert body["tags"] == ["opsdeck", "action", "maintenance-on"]
    assert body["text"].startswith("Maintenance mode on by ops-user")
    assert abs(body["time"] / 1000 - now.timestamp()) < 60
    assert set(body) == {"panelId", "time", "timeEnd", "tags", "text"}


async def test_a_refused_annotation_is_given_up(
    api: Harness, fake: tuple[Fake, httpx.AsyncClient]
) -> None:
    server = fake[0]
    settings = incident_settings(grafana_token=SecretStr(TOKEN), grafana_ca_file=server.ca_file)
    api.sql("INSERT INTO ops.grafana_annotations (text, tags, at) VALUES ('refused', '{x}', now())")
    server.on("/api/annotations", Reply(400, {"message": "bad request"}))
    grafana = sender(settings, server.base)
    assert grafana is not None
    async with await psycopg.AsyncConnection.connect(api.db_url, autocommit=True) as conn:
        await flush(conn, grafana, datetime.now(UTC) + timedelta(hours=2), settings)
    row = api.sql(
        "SELECT status, attempts, last_error FROM ops.grafana_annotations WHERE text = 'refused'"
    )
    assert row[0][:2] == ("sent", 1)
    assert str(row[0][2]).startswith("given up")


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_as_an_http_date_sets_the_next_attempt(
    api: Harness, fake: tuple[Fake, httpx.AsyncClient], status: int
) -> None:
    server = fake[0]
    settings = incident_settings(grafana_token=SecretStr(TOKEN), grafana_ca_file=server.ca_file)
    text = f"busy grafana {status}"
    api.sql(
        "INSERT INTO ops.grafana_annotations (text, tags, at) VALUES (%s, '{x}', now())", (text,)
    )
    when = math.ceil(time.time()) + 120  # HTTP dates have whole seconds
    date = email.utils.formatdate(when, usegmt=True)
    server.on("/api/annotations", Reply(status, {"message": "busy"}, {"Retry-After": date}))
    grafana = sender(settings, server.base)
    assert grafana is not None
    query = "SELECT status, attempts, next_attempt_at FROM ops.grafana_annotations WHERE text = %s"
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(api.db_url, autocommit=True) as conn:
        await flush(conn, grafana, now, settings)
        ((state, attempts, next_at),) = api.sql(query, (text,))
        assert (state, attempts) == ("pending", 1)
        # At the date the server named, not the schedule's 5 s.
        due = datetime.fromtimestamp(when, UTC)
        assert due - timedelta(seconds=2) <= next_at <= due + timedelta(seconds=1)
        await flush(conn, grafana, now + timedelta(seconds=60), settings)
        assert api.sql(query, (text,))[0][:2] == ("pending", 1)  # not due yet
        await flush(conn, grafana, due + timedelta(seconds=1), settings)
        assert api.sql(query, (text,))[0][:2] == ("sent", 2)
