"""Per-endpoint limits are enforced across workers (in PostgreSQL), and one bad endpoint
does not hold up the others."""

from __future__ import annotations

from pathlib import Path

from tests.webhooks.harness import FAST, endpoint, send, sql, statuses, wait_for, workers
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


HANGING_TIMEOUT = float(FAST["OPSDECK_WEBHOOKS__REQUEST_TIMEOUT_SECONDS"])
DELIVERY_P99 = """
SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM d.delivered_at - m.created_at))
FROM ops.webhook_deliveries d JOIN ops.webhook_messages m ON m.id = d.message_id
WHERE d.endpoint_id = %s AND m.id > %s
"""


def _p99(db_url: str, endpoint_id: int, after_message: int) -> float:
    ((p99,),) = sql(db_url, DELIVERY_P99, (endpoint_id, after_message))
    return float(p99)


def _last_message(db_url: str) -> int:
    return int(sql(db_url, "SELECT coalesce(max(id), 0) FROM ops.webhook_messages")[0][0])


def test_a_hanging_endpoint_does_not_slow_the_others(db_url: str, logs: Path) -> None:
    """The healthy endpoint's delivery times, alone and then beside one whose every request
    waits for its timeout, measured in one run: waiting behind it would cost a timeout."""
    with partner() as hanging, partner() as healthy, workers(db_url, logs) as (worker,):
        good, _ = endpoint(db_url, healthy.url("/ok"))
        wait_for("the worker at work", lambda: worker.at_work_for() > 0, 60)
        send(db_url, 300)
        wait_for("300 alone", lambda: statuses(db_url, good) == {"succeeded": 300})
        alone = _p99(db_url, good, 0)
        before = _last_message(db_url)
        bad, _ = endpoint(db_url, hanging.url("/slow/10000"))
        send(db_url, 300)
        wait_for("300 beside", lambda: statuses(db_url, good) == {"succeeded": 600})
        beside = _p99(db_url, good, before)
        assert beside < alone + HANGING_TIMEOUT, (alone, beside)
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
