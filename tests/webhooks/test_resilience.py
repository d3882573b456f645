"""The gateway without Redis, and across a PostgreSQL restart: deliveries continue, limits
hold, and workers recover by themselves."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.migrate import migrate
from opsdeck.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from opsdeck.supervisor import Supervisor
from tests.api.conftest import running
from tests.webhooks.gateway import charge, gateway_settings, process_inbound, stripe_headers
from tests.webhooks.harness import endpoint, send, sql, statuses, wait_for, workers
from tests.webhooks.servers import partner

pytestmark = pytest.mark.slow


@pytest.fixture
def stopped_redis(tmp_path: Path) -> str:
    """A Redis of this test's own (the suite's is shared), started and then stopped."""
    supervisor = Supervisor()
    redis = EmbeddedRedis(tmp_path / "redis", free_port(0))
    supervisor.start(redis.service(tmp_path / "redis.log"))
    supervisor.stop_all()
    return redis.url


@pytest.mark.anyio
async def test_with_redis_stopped_deliveries_continue_and_limits_hold(
    db_url: str, stopped_redis: str, logs: Path
) -> None:
    with partner() as server, workers(db_url, logs, REDIS_URL=stopped_redis):
        endpoint(db_url, server.url("/ok"), rate_limit_per_second=10.0, max_in_flight=2)
        send(db_url, 40)
        wait_for("40 deliveries", lambda: statuses(db_url) == {"succeeded": 40}, 60)
        times = sorted(s.at for s in server.seen)
        assert times[-1] - times[0] >= (40 - 10) / 10 - 0.5  # the rate limit held
        assert server.max_in_flight <= 2
    # The inbound route stores PSP events without Redis too.
    async with running(gateway_settings(db_url, stopped_redis)) as gw:
        body = charge("evt_noredis", "ch_noredis")
        async with gw.client() as client:
            answer = await client.post(
                "/webhooks/inbound/stripe", content=body, headers=stripe_headers(body)
            )
        assert answer.status_code == 200, answer.text
        assert await process_inbound(gw.settings) == 1


def test_workers_recover_by_themselves_after_a_postgresql_restart(
    tmp_path: Path, logs: Path
) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", free_port(0))
    pg.initialize()
    database = Supervisor()
    database.start(pg.service(tmp_path / "pg.log"))
    try:
        migrate(pg.url, pg.url)
        with partner() as server, workers(pg.url, logs, count=2) as running_workers:
            endpoint(pg.url, server.url("/slow/50"))
            send(pg.url, 300)
            wait_for("deliveries under way", lambda: len(server.seen) > 20, 60)
            database.stop_all()  # a restart in the middle of the work
            time.sleep(3)
            database.start(pg.service(tmp_path / "pg.log"))
            send(pg.url, 100)
            wait_for("every delivery", lambda: statuses(pg.url) == {"succeeded": 400}, 120)
            assert all(w.process.poll() is None for w in running_workers)
            assert set(server.ids()) >= set(_uids(pg.url))
            assert any("recovered" in w.tail() for w in running_workers)
    finally:
        database.stop_all()


def _uids(url: str) -> list[str]:
    return [str(r[0]) for r in sql(url, "SELECT uid FROM ops.webhook_messages")]
