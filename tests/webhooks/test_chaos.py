"""Chaos: 30,000 deliveries while workers are killed with SIGKILL at random. Every message
arrives at least once, none is lost, a redelivery carries the same ``webhook-id``, and the
receiver verifies every signature with the standardwebhooks package."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.webhooks.harness import (
    ReceiverProcess,
    WorkerProcess,
    endpoint,
    send,
    sql,
    statuses,
)

# Kills, restarts and expiring leases stretch 30 k deliveries past the default timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
MESSAGES = 30_000
WORKERS = 3
MIN_WORK_SECONDS = 2.0
CHAOS = {
    "OPSDECK_WEBHOOKS__LEASE_SECONDS": "3",
    "OPSDECK_WEBHOOKS__HEARTBEAT_SECONDS": "1",
    "OPSDECK_WEBHOOKS__CONCURRENCY": "150",
}


def test_no_message_is_lost_when_workers_are_killed(db_url: str, logs: Path) -> None:
    rng = random.Random(7)
    endpoint_id, secret = endpoint(db_url, "http://127.0.0.1:9/placeholder", max_in_flight=500)
    receiver = ReceiverProcess(secret, logs)
    sql(
        db_url,
        "UPDATE ops.webhook_endpoints SET url = %s WHERE id = %s",
        (receiver.url, endpoint_id),
    )
    send(db_url, MESSAGES)
    running = [WorkerProcess(db_url, logs, f"w{i}", **CHAOS) for i in range(WORKERS)]
    kills = 0
    deadline = time.monotonic() + 840
    try:
        while statuses(db_url).get("succeeded", 0) < MESSAGES:
            assert time.monotonic() < deadline, f"stuck at {statuses(db_url)}"
            time.sleep(rng.uniform(2.0, 5.0))
            # Kill one that is at work, in the middle of whatever it is doing.
            busy = [w for w in running if w.at_work_for() > MIN_WORK_SECONDS]
            if busy and statuses(db_url).get("pending", 0) > 0:
                victim = rng.choice(busy)
                running.remove(victim)
                victim.kill()
                kills += 1
                running.append(WorkerProcess(db_url, logs, f"w{kills + WORKERS}", **CHAOS))
    finally:
        for worker in running:
            worker.stop()
        received = receiver.stop()
    assert statuses(db_url) == {"succeeded": MESSAGES}
    uids = {r[0] for r in sql(db_url, "SELECT uid FROM ops.webhook_messages")}
    arrivals = Counter(webhook_id for webhook_id, _, _ in received)
    missing = sorted(uids - set(arrivals))
    history = [
        sql(
            db_url,
            "SELECT a.attempt, a.worker, a.started_at, a.response_status, a.error_class "
            "FROM ops.webhook_attempts a JOIN ops.webhook_deliveries d ON d.id = a.delivery_id "
            "JOIN ops.webhook_messages m ON m.id = d.message_id WHERE m.uid = %s",
            (uid,),
        )
        for uid in missing[:5]
    ]
    assert missing == [], history
    assert set(arrivals) == uids  # every message at least once, nothing else
    assert all(verified for _, _, verified in received)
    duplicates = sum(arrivals.values()) - len(uids)
    print(f"{kills} workers killed; {duplicates} redeliveries (same webhook-id) of {MESSAGES}")
    assert kills >= 5
