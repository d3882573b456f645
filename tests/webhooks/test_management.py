"""Managing the gateway through the API (RBAC, audit), with a real worker delivering:
endpoints, secret rotation, test delivery, replays, recovery, and the drilldowns."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from api.rbac import Role
from tests.api.conftest import Harness, running
from tests.webhooks.gateway import gateway_settings
from tests.webhooks.harness import send, statuses, wait_for, workers
from tests.webhooks.servers import partner

pytestmark = pytest.mark.anyio
ENDPOINTS = "/api/v1/webhook-endpoints"


@pytest.fixture
async def gw(db_url: str, redis_url: str) -> AsyncIterator[Harness]:
    async with running(gateway_settings(db_url, redis_url)) as harness:
        yield harness


def _actions(gw: Harness) -> list[str]:
    rows = gw.sql("SELECT action FROM ops.audit_log WHERE action LIKE 'webhooks.%' ORDER BY id")
    return [str(r[0]) for r in rows]


async def test_endpoints_are_managed_with_rbac_and_audit(gw: Harness) -> None:
    async with gw.key_client(Role.OPS) as ops, gw.key_client(Role.VIEWER) as viewer:
        body = {"url": "https://partner.example/hooks", "event_types": ["payment.*"]}
        assert (await viewer.post(ENDPOINTS, json=body)).status_code == 403
        created = await ops.post(ENDPOINTS, json={**body, "rate_limit_per_second": 20})
        assert created.status_code == 201, created.text
        endpoint = created.json()
        assert endpoint["secret"].startswith("whsec_")
        assert endpoint["max_in_flight"] == 50
        path = f"{ENDPOINTS}/{endpoint['id']}"
        bad = await ops.post(ENDPOINTS, json={"url": "gopher://x", "event_types": ["*"]})
        assert bad.status_code == 400
        assert bad.json()["invalid_params"][0]["name"] == "url"
        changed = await ops.patch(path, json={"event_types": ["*"], "rate_limit_per_second": None})
        assert changed.json()["event_types"] == ["*"]
        assert changed.json()["rate_limit_per_second"] is None
        rotated = await ops.post(f"{path}/rotate-secret", json={})
        assert rotated.status_code == 200
        shown = (await ops.get(path)).json()
        assert [s["active"] for s in shown["secrets"]] == [True, True]
        assert shown["secrets"][0]["expires_at"] is not None  # the old one, for 24 h
        assert (await viewer.get(path)).status_code == 403
        assert (await ops.delete(path)).json() == {"deleted": True, "id": endpoint["id"]}
        assert (await ops.get(path)).status_code == 404
    assert _actions(gw) == [
        "webhooks.endpoint.create",
        "webhooks.endpoint.update",
        "webhooks.endpoint.rotate_secret",
        "webhooks.endpoint.delete",
    ]


async def test_test_delivery_rotation_and_replay(gw: Harness, logs: Path) -> None:
    with partner() as server, workers(gw.db_url, logs):
        async with gw.key_client(Role.OPS) as ops:
            created = (await ops.post(ENDPOINTS, json={"url": server.url("/ok")})).json()
            path = f"{ENDPOINTS}/{created['id']}"
            old_secret = created["secret"]
            sent = await ops.post(f"{path}/test", json={})
            assert sent.status_code == 202
            wait_for("the test delivery", lambda: len(server.seen) == 1)
            test = server.seen[0]
            assert json.loads(test.body)["type"] == "webhook.test"
            assert test.webhook_id == sent.json()["webhook_id"]
            new_secret = (await ops.post(f"{path}/rotate-secret", json={})).json()["secret"]
            send(gw.db_url, 1)
            wait_for("a delivery", lambda: len(server.seen) == 2)
            signed = server.seen[1]
            for secret in (old_secret, new_secret):  # both sign during the grace period
                Webhook(secret).verify(signed.body, signed.headers, json_parse=False)
            (delivery,) = gw.sql(
                "SELECT d.id FROM ops.webhook_deliveries d JOIN ops.webhook_messages m "
                "ON m.id = d.message_id WHERE m.uid = %s",
                (signed.webhook_id,),
            )
            again = await ops.post(f"/api/v1/webhooks/outbound/{delivery[0]}/replay", json={})
            assert again.status_code == 202, again.text
            wait_for("the replay", lambda: len(server.seen) == 3)
            assert server.seen[2].webhook_id == signed.webhook_id
            recorded = "SELECT count(*) FROM ops.webhook_attempts WHERE delivery_id = %s"
            wait_for("the replay recorded", lambda: gw.sql(recorded, delivery) == [(2,)])
            detail = (await ops.get(f"/api/v1/webhooks/outbound/{delivery[0]}")).json()
    assert [a["trigger"] for a in detail["attempts"]] == ["scheduled", "replay"]
    assert detail["message"]["uid"] == signed.webhook_id
    assert json.loads(detail["message"]["body"])["type"] == "payment.succeeded"
    assert json.loads(detail["attempts"][0]["request_headers"])["webhook-id"] == signed.webhook_id


async def test_replaying_failures_by_range_with_dry_run_and_cap(gw: Harness, logs: Path) -> None:
    with partner() as server, workers(gw.db_url, logs):
        async with gw.key_client(Role.OPS) as ops:
            created = (await ops.post(ENDPOINTS, json={"url": server.url("/status/500")})).json()
            path = f"{ENDPOINTS}/{created['id']}"
            send(gw.db_url, 5)
            wait_for("dead deliveries", lambda: statuses(gw.db_url) == {"dead": 5}, 60)
            dead = await ops.get("/api/v1/webhooks", params={"status": "dead", "from": "now-1h"})
            assert len(dead.json()["data"]) == 5
            await ops.patch(path, json={"url": server.url("/ok")})
            window = {"from": "now-1h", "to": "now"}
            dry = await ops.post(f"{path}/replay", json={**window, "dry_run": True})
            assert dry.json() == {"matched": 5, "done": 0, "truncated": False, "dry_run": True}
            capped = await ops.post(f"{path}/replay", json={**window, "limit": 2})
            assert capped.json() == {"matched": 5, "done": 2, "truncated": True, "dry_run": False}
            wait_for("two replays", lambda: statuses(gw.db_url) == {"dead": 3, "succeeded": 2})
            rest = await ops.post(f"{path}/replay", json=window)
            assert rest.json()["done"] == 3
            wait_for("every replay", lambda: statuses(gw.db_url) == {"succeeded": 5})
            letters = gw.sql(
                "SELECT count(*) FROM ops.webhook_dead_letters WHERE resolved_at IS NULL"
            )
            assert letters == [(0,)]
            too_many = await ops.post(f"{path}/replay", json={**window, "limit": 10**9})
            assert too_many.status_code == 400


async def test_recovering_deliveries_that_were_never_created(gw: Harness, logs: Path) -> None:
    send(gw.db_url, 7)  # before any endpoint existed: no deliveries
    send(gw.db_url, 2, event_type="booking.confirmed")
    assert statuses(gw.db_url) == {}
    with partner() as server, workers(gw.db_url, logs):
        async with gw.key_client(Role.OPS) as ops:
            body = {"url": server.url("/ok"), "event_types": ["payment.*"]}
            created = (await ops.post(ENDPOINTS, json=body)).json()
            path = f"{ENDPOINTS}/{created['id']}"
            window = {"from": "now-1h", "to": "now"}
            dry = await ops.post(f"{path}/recover", json={**window, "dry_run": True})
            assert dry.json()["matched"] == 7  # the filter leaves the bookings out
            done = await ops.post(f"{path}/recover", json=window)
            assert done.json()["done"] == 7
            wait_for("recovered deliveries", lambda: statuses(gw.db_url) == {"succeeded": 7})
            again = await ops.post(f"{path}/recover", json=window)
            assert again.json() == {"matched": 0, "done": 0, "truncated": False, "dry_run": False}
    assert len(set(server.ids())) == 7
