"""Per-endpoint limits are enforced across workers (in PostgreSQL), and one bad endpoint
does not hold up the others."""

from __future__ import annotations

from pathlib import Path

from tests.webhooks.harness import endpoint, send, sql, statuses, wait_for, workers
from tests.webhooks.servers import partner


def test_rate_limit_holds_across_two_workers(db_url: str, logs: Path) -> None:
    with partner() as server, workers(db_url, logs, count=2):
        endpoint(db_url, server.url("/ok"), rate_limit_per_second=5.0)
        send(db_url, 30)
        wait_for("30 deliveries", lambda: statuses(db_url) == {"succeeded": 30}, 60)
        times = sorted(s.at for s in server.seen)
        assert len(times) == 30
        # A bucket of 5 tokens refilled at 5/s: never more than 5 + 5 w in a window of w s.
        for i, start in enumerate(times):
            for j in range(i, len(times)):
                window = times[j] - start
                assert j - i + 1 <= 5 + 5 * window + 1, (i, j, window)
        assert times[-1] - times[0] >= (30 - 5) / 5 - 0.5


def test_concurrency_cap_holds_across_two_workers(db_url: str, logs: Path) -> None:
    with partner() as server, workers(db_url, logs, count=2):
        endpoint(db_url, server.url("/slow/300"), max_in_flight=3)
        send(db_url, 24)
        wait_for("24 deliveries", lambda: statuses(db_url) == {"succeeded": 24}, 60)
        assert server.max_in_flight == 3
        assert len(server.seen) == 24


def test_a_hanging_endpoint_does_not_slow_the_others(db_url: str, logs: Path) -> None:
    with partner() as hanging, partner() as healthy, workers(db_url, logs) as (worker,):
        bad, _ = endpoint(db_url, hanging.url("/slow/10000"))
        good, _ = endpoint(db_url, healthy.url("/ok"))
        send(db_url, 300)
        wait_for(
            "the healthy endpoint served", lambda: statuses(db_url, good) == {"succeeded": 300}
        )
        ((p99,),) = sql(
            db_url,
            "SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM "
            "d.delivered_at - m.created_at)) FROM ops.webhook_deliveries d "
            "JOIN ops.webhook_messages m ON m.id = d.message_id WHERE d.endpoint_id = %s",
            (good,),
        )
        assert p99 < 5.0  # while every request to the hanging one waits 3 s for its timeout
        wait_for(
            "the hanging endpoint's circuit open",
            lambda: worker.value("opsdeck_webhook_endpoints", state="circuit_open") == 1,
            30,
        )
        timeouts = sql(
            db_url,
            "SELECT count(*) FROM ops.webhook_attempts a JOIN ops.webhook_deliveries d "
            "ON d.id = a.delivery_id WHERE d.endpoint_id = %s AND a.error_class = 'timeout'",
            (bad,),
        )[0][0]
        assert 5 <= timeouts <= 50 + 10  # the cap in flight, then probes: not one per message
        assert statuses(db_url, bad).get("pending", 0) > 200
