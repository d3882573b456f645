"""What the endpoint pages set, a real worker honours: an endpoint's own retry schedule
decides when its next attempt is due (its neighbour keeps the global one), its rate limit
caps its deliveries (one without keeps the default), a replay sends again exactly what its
dry run counted, a test event is a delivery like any other, and a rotated secret signs the
next delivery beside the old one, verified at a real receiver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from api.rbac import Role
from tests.api.conftest import Harness, running
from tests.incidents.actions_client import confirmation, submit
from tests.webhooks.endpoint_forms import (
    REASON,
    change,
    dry_run_count,
    endpoint_fields,
    shown_once,
)
from tests.webhooks.gateway import gateway_settings
from tests.webhooks.harness import FAST, endpoint, send, sql, statuses, wait_for, workers
from tests.webhooks.servers import partner

pytestmark = pytest.mark.anyio
PAGES = "/webhook-endpoints"
GLOBAL = [float(d) for d in json.loads(FAST["OPSDECK_WEBHOOKS__RETRY_SCHEDULE_SECONDS"])]
# An attempt's next one is due this long after it ended (what the worker wrote).
DELAYS = """
SELECT a.attempt,
       extract(epoch FROM a.next_attempt_at - a.started_at) - a.duration_ms / 1000
FROM ops.webhook_attempts a JOIN ops.webhook_deliveries d ON d.id = a.delivery_id
WHERE d.endpoint_id = %s ORDER BY a.attempt
"""


@pytest.fixture
async def gw(db_url: str, redis_url: str) -> AsyncIterator[Harness]:
    async with running(gateway_settings(db_url, redis_url)) as harness:
        yield harness


def _delays(db_url: str, endpoint_id: int) -> list[tuple[int, float | None]]:
    return [
        (int(n), None if d is None else round(float(d), 3))
        for n, d in sql(db_url, DELAYS, (endpoint_id,))
    ]


async def test_an_endpoint_schedule_decides_its_next_attempt(gw: Harness, logs: Path) -> None:
    with partner() as server:
        failing = server.url("/status/500")
        neighbour, _ = endpoint(gw.db_url, failing)
        async with await gw.session_client(Role.OPS) as ops:
            fields = endpoint_fields(url=failing, event_types="*", retry_schedule="1.5, 3600")
            await change(ops, f"{PAGES}/new", fields)
        (own,) = (int(r[0]) for r in sql(gw.db_url, "SELECT max(id) FROM ops.webhook_endpoints"))
        with workers(gw.db_url, logs, OPSDECK_WEBHOOKS__RETRY_JITTER="0"):
            send(gw.db_url, 1)
            wait_for(
                "the neighbour's dead letter", lambda: statuses(gw.db_url, neighbour) == {"dead": 1}
            )
            wait_for("two attempts of its own", lambda: len(_delays(gw.db_url, own)) == 2)
    assert _delays(gw.db_url, own) == [(1, 1.5), (2, 3600.0)]
    assert _delays(gw.db_url, neighbour) == [
        *((n, d) for n, d in enumerate(GLOBAL, start=1)),
        (len(GLOBAL) + 1, None),
    ]
    due = sql(
        gw.db_url,
        "SELECT d.next_attempt_at = a.next_attempt_at, d.status FROM ops.webhook_deliveries d "
        "JOIN ops.webhook_attempts a ON a.delivery_id = d.id AND a.attempt = 2 "
        "WHERE d.endpoint_id = %s",
        (own,),
    )
    assert due == [(True, "pending")]


def _span(server_times: list[float]) -> float:
    return max(server_times) - min(server_times)


async def test_an_endpoint_rate_limit_caps_its_deliveries(gw: Harness, logs: Path) -> None:
    with partner() as server:
        async with await gw.session_client(Role.OPS) as ops:
            own = endpoint_fields(url=server.url("/ok/own"), event_types="*", rate_limit="5")
            await change(ops, f"{PAGES}/new", own)
        endpoint(gw.db_url, server.url("/ok/default"))  # no limit of its own
        with workers(gw.db_url, logs, OPSDECK_WEBHOOKS__DEFAULT_RATE_LIMIT_PER_SECOND="2"):
            send(gw.db_url, 12)
            wait_for("every delivery", lambda: statuses(gw.db_url) == {"succeeded": 24}, 60)
        own_times = [s.at for s in server.seen if s.path == "/ok/own"]
        default_times = [s.at for s in server.seen if s.path == "/ok/default"]
    # A bucket of r tokens refilled at r a second lets r + r w through in w seconds.
    assert len(own_times) == len(default_times) == 12
    assert _span(own_times) >= (12 - 5) / 5 - 0.3
    assert _span(default_times) >= (12 - 2) / 2 - 0.3


async def test_a_replay_sends_what_its_dry_run_counted(gw: Harness, logs: Path) -> None:
    with partner() as server, workers(gw.db_url, logs):
        async with await gw.session_client(Role.OPS) as ops:
            fields = endpoint_fields(
                url=server.url("/status/503"), event_types="payment.*", retry_schedule="0.1"
            )
            await change(ops, f"{PAGES}/new", fields)
            (made,) = sql(gw.db_url, "SELECT id FROM ops.webhook_endpoints")[0]
            send(gw.db_url, 4)
            send(gw.db_url, 2, event_type="booking.confirmed")  # not for this endpoint
            wait_for("dead deliveries", lambda: statuses(gw.db_url) == {"dead": 4})
            fixed = endpoint_fields(url=server.url("/ok"), event_types="payment.*")
            await change(ops, f"{PAGES}/{made}/edit", fixed)
            path = f"{PAGES}/{made}/replay?from=now-1h&to=now%2B1m"
            page, csrf, key = await confirmation(ops, path)
            counted = dry_run_count(page)
            assert statuses(gw.db_url) == {"dead": 4}  # the dry run changed nothing
            done = await submit(ops, path, csrf, key, REASON, _range(page))
            assert f"{counted} of {counted} failed deliveries" in done.text, done.text[:600]
            wait_for("the replays", lambda: statuses(gw.db_url) == {"succeeded": 4})
    replayed = sql(gw.db_url, "SELECT count(*) FROM ops.webhook_attempts WHERE trigger = 'replay'")
    assert counted == 4
    assert replayed == [(counted,)]
    assert len(server.ids("/ok")) == counted


def _range(page: str) -> dict[str, str]:
    import re

    found = dict(re.findall(r'name="(from|to)" value="([^"]+)"', page))
    assert set(found) == {"from", "to"}, page[:500]
    return found


async def test_a_rotated_secret_signs_the_next_delivery(gw: Harness, logs: Path) -> None:
    with partner() as server, workers(gw.db_url, logs):
        async with await gw.session_client(Role.OPS) as ops:
            # A test event reaches the endpoint whatever its filters.
            fields = endpoint_fields(url=server.url("/ok"), event_types="payment.*")
            first = shown_once(await change(ops, f"{PAGES}/new", fields))
            (made,) = sql(gw.db_url, "SELECT id FROM ops.webhook_endpoints")[0]
            server.secrets = [first]
            await change(ops, f"{PAGES}/{made}/send-test")
            wait_for("the test event", lambda: len(server.seen) == 1)
            second = shown_once(await change(ops, f"{PAGES}/{made}/rotate-secret"))
            server.secrets = [second]  # the receiver switched to the new secret alone
            await change(ops, f"{PAGES}/{made}/send-test")
            wait_for("the next test event", lambda: len(server.seen) == 2)
    before, after = server.seen
    assert before.verified
    assert json.loads(before.body)["type"] == "webhook.test"
    assert after.verified  # signed with the new secret
    Webhook(first).verify(after.body, after.headers, json_parse=False)  # and the old one
    assert len(after.headers["webhook-signature"].split(" ")) == 2
    attempts = sql(
        gw.db_url,
        "SELECT a.trigger, a.succeeded, a.response_status FROM ops.webhook_attempts a "
        "ORDER BY a.id",
    )
    assert attempts == [("test", True, 200), ("test", True, 200)]
