"""Real ``opsdeck worker`` processes, database helpers and waiting, for the gateway's tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from core.sealed_secrets import SecretBox
from gateway.endpoints import EndpointSpec, create
from gateway.outbox import Event, enqueue_many
from opsdeck.embedded import free_port
from tests.conftest import REPO, TEST_SECRETS_KEY, opsdeck_env, service_url
from tests.processes import stopped_on_exit, terminate

# Seals secrets as the suite's processes do (tests.conftest.SUITE_SETTINGS).
SUITE_BOX = SecretBox(TEST_SECRETS_KEY)
# What the tests run workers with: fast retries, short leases, local receivers allowed.
FAST = {
    "OPSDECK_WEBHOOKS__SSRF_ALLOW": '["127.0.0.1/32"]',
    "OPSDECK_WEBHOOKS__RETRY_SCHEDULE_SECONDS": "[0.2, 0.4, 0.8]",
    "OPSDECK_WEBHOOKS__INBOUND_RETRY_SCHEDULE_SECONDS": "[0.1, 0.2]",
    "OPSDECK_WEBHOOKS__POLL_INTERVAL_SECONDS": "0.5",
    "OPSDECK_WEBHOOKS__LEASE_SECONDS": "4",
    "OPSDECK_WEBHOOKS__HEARTBEAT_SECONDS": "1",
    "OPSDECK_WEBHOOKS__REQUEST_TIMEOUT_SECONDS": "3",
    "OPSDECK_WEBHOOKS__CIRCUIT_OPEN_SECONDS": "1",
    "OPSDECK_WEBHOOKS__CIRCUIT_OPEN_MAX_SECONDS": "2",
    "OPSDECK_WEBHOOKS__TAIL_ENABLED": "false",
}


class WorkerProcess:
    """``opsdeck worker`` as a child process with its own /metrics port."""

    def __init__(self, db_url: str, log_dir: Path, name: str = "worker", **settings: str) -> None:
        self.port = free_port(0)
        self.log = log_dir / f"{name}-{self.port}.log"
        self.working_since: float | None = None
        env = opsdeck_env(DATABASE_URL=service_url(db_url), **{**FAST, **settings})
        argv = [sys.executable, "-m", "opsdeck", "worker", "--metrics-port", str(self.port)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
            )

    def at_work_for(self) -> float:
        """Seconds since it started delivering (0 while it is still starting)."""
        if self.working_since is None and "delivering with concurrency" in self.tail():
            self.working_since = time.monotonic()
        return 0.0 if self.working_since is None else time.monotonic() - self.working_since

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2).text
        return {
            (s.name, tuple(sorted(s.labels.items()))): float(s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def value(self, name: str, **labels: str) -> float | None:
        try:
            return self.metrics().get((name, tuple(sorted(labels.items()))))
        except httpx.HTTPError:
            return None

    def stop(self, timeout: float = 40) -> int:
        return terminate(self.process, timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@contextmanager
def workers(
    db_url: str, log_dir: Path, *, count: int = 1, **settings: str
) -> Iterator[list[WorkerProcess]]:
    started = [WorkerProcess(db_url, log_dir, f"worker{i}", **settings) for i in range(count)]
    with stopped_on_exit(started):
        yield started


def sql(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def endpoint(url: str, target: str, **fields: Any) -> tuple[int, str]:
    """A new endpoint: (its id, its secret)."""
    with psycopg.connect(url) as conn:
        created, secret = create(conn, EndpointSpec(target, **fields), SUITE_BOX)
        conn.commit()
    return int(created["id"]), secret


def send(url: str, count: int, event_type: str = "payment.succeeded", **data: Any) -> None:
    with psycopg.connect(url) as conn:
        for start in range(0, count, 5_000):
            events = [
                Event(event_type, {"n": n, **data}, "test")
                for n in range(start, min(count, start + 5_000))
            ]
            enqueue_many(conn, events)
            conn.commit()


def statuses(url: str, endpoint_id: int | None = None) -> dict[str, int]:
    rows = sql(
        url,
        "SELECT status, count(*) FROM ops.webhook_deliveries "
        "WHERE %(e)s::bigint IS NULL OR endpoint_id = %(e)s GROUP BY 1",
        {"e": endpoint_id},
    )
    return {str(k): int(v) for k, v in rows}


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"no {what} within {timeout:.0f} s")


class ReceiverProcess:
    """``python -m opsdeck.partner_receiver``: verifies every signature with standardwebhooks
    and records ``webhook-id, time, verified`` per request."""

    def __init__(self, secret: str, log_dir: Path) -> None:
        self.port = free_port(0)
        self.record = log_dir / f"received-{self.port}.tsv"
        argv = [sys.executable, "-m", "opsdeck.partner_receiver", "--port", str(self.port)]
        argv += ["--secret", secret, "--record", str(self.record)]
        with (log_dir / f"receiver-{self.port}.log").open("ab") as out:
            self.process = subprocess.Popen(
                argv, env=opsdeck_env(), cwd=REPO, stdout=out, stderr=subprocess.STDOUT
            )
        wait_for("the receiver", self._answers, 30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def _answers(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> list[tuple[str, float, bool]]:
        """Stop it (its record is flushed on the way out) and read the record."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        lines = self.record.read_text().splitlines() if self.record.exists() else []
        return [(i, float(t), ok == "1") for i, t, ok in (line.split("\t") for line in lines)]
