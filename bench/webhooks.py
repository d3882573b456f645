"""Webhook gateway benchmark: sustained deliveries per second to a local receiver with two
``opsdeck worker`` processes, and the latency from a message's creation to its arrival.

A producer enqueues messages through the outbox at ``--rate`` a second (a batch every
50 ms, each batch one transaction, as the platform tail does); two workers deliver them to
``python -m opsdeck.partner_receiver``, which verifies every Standard Webhooks signature and
records when each message arrived. After ``--warmup`` seconds, ``--seconds`` of steady state
are measured: the rate offered, the rate delivered, the backlog at both ends (a rate is
sustained when the backlog does not grow), and p50/p99 of arrival - creation.

    python -m bench.webhooks --rate 2500 --seconds 60

Uses DATABASE_URL's server when set, else an embedded PostgreSQL; the database
``opsdeck_bench_webhooks`` is created and dropped. Everything runs on this machine: the
producer, PostgreSQL, both workers and the receiver share its CPUs.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from core.database import libpq_url
from core.migrate import migrate
from core.sealed_secrets import SecretBox, new_key
from gateway.endpoints import EndpointSpec, create
from gateway.outbox import Event, enqueue_many
from opsdeck.embedded import EmbeddedPostgres, free_port
from opsdeck.supervisor import Supervisor

REPO = Path(__file__).resolve().parent.parent
DATABASE = "opsdeck_bench_webhooks"
TICK_SECONDS = 0.05
SECRETS_KEY = new_key()  # the run's workers open the endpoint's sealed secret with it


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def server(work: Path) -> Iterator[str]:
    """An admin URL: DATABASE_URL's server, or an embedded PostgreSQL."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    supervisor = Supervisor()
    pg = EmbeddedPostgres(REPO / ".opsdeck" / "bench" / "postgres-webhooks", free_port(55437))
    pg.initialize()
    supervisor.start(pg.service(work / "postgres.log"))
    try:
        yield pg.url
    finally:
        supervisor.stop_all()


@contextmanager
def database(admin_url: str) -> Iterator[str]:
    url = libpq_url(admin_url).rpartition("/")[0] + "/" + DATABASE
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    try:
        migrate(url, url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(drop)


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSDECK_")}
    env.update(
        DATABASE_URL=url,
        PYTHONPATH=str(REPO),
        OPSDECK_WEBHOOKS__SSRF_ALLOW='["127.0.0.1/32"]',
        OPSDECK_WEBHOOKS__TAIL_ENABLED="false",
        OPSDECK_SECRETS_KEY=SECRETS_KEY,
    )
    return env


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(url: str, what: str) -> None:
    for _ in range(600):
        if _answers(url):
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


class Producer:
    def __init__(self, url: str, rate: float) -> None:
        self.url = url
        self.per_tick = rate * TICK_SECONDS
        self.stop = threading.Event()
        self.created = 0
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        owed = 0.0
        started = time.monotonic()
        ticks = 0
        with psycopg.connect(self.url) as conn:
            while not self.stop.is_set():
                owed += self.per_tick
                count = int(owed)
                owed -= count
                events = [Event("payment.succeeded", {"n": self.created + i}) for i in range(count)]
                enqueue_many(conn, events)
                conn.commit()
                self.created += count
                ticks += 1
                delay = started + ticks * TICK_SECONDS - time.monotonic()
                if delay > 0:
                    time.sleep(delay)


def _pending(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM ops.webhook_deliveries WHERE status = 'pending'"
        ).fetchone()
    return int(row[0]) if row else 0


def run(args: argparse.Namespace, url: str, work: Path) -> None:
    record = work / "received.tsv"
    port = free_port(0)
    with psycopg.connect(url) as conn:
        target = f"http://127.0.0.1:{port}/hooks"
        spec = EndpointSpec(target, max_in_flight=args.concurrency * 2)
        _, secret = create(conn, spec, SecretBox(SECRETS_KEY))
        conn.commit()
    receiver_argv = [sys.executable, "-m", "opsdeck.partner_receiver", "--port", str(port)]
    receiver_argv += ["--secret", secret, "--record", str(record)]
    processes = [subprocess.Popen(receiver_argv, cwd=REPO, env=_env(url))]
    _wait(f"http://127.0.0.1:{port}/", "the receiver")
    for _ in range(args.workers):
        metrics = free_port(0)
        argv = [sys.executable, "-m", "opsdeck", "worker", "--metrics-port", str(metrics)]
        argv += ["--concurrency", str(args.concurrency)]
        processes.append(subprocess.Popen(argv, cwd=REPO, env=_env(url)))
        _wait(f"http://127.0.0.1:{metrics}/metrics", "a worker")
    producer = Producer(url, args.rate)
    try:
        producer.thread.start()
        time.sleep(args.warmup)
        t0, created0, backlog0 = time.time(), producer.created, _pending(url)
        load0 = os.getloadavg()[0]
        time.sleep(args.seconds)
        t1, created1, backlog1 = time.time(), producer.created, _pending(url)
        producer.stop.set()
        producer.thread.join()
        drained = time.monotonic()
        while _pending(url) and time.monotonic() - drained < 300:
            time.sleep(0.5)
        drain_seconds = time.monotonic() - drained
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
    report(
        args, url, record, (t0, t1), (created1 - created0, backlog0, backlog1, load0), drain_seconds
    )


def report(
    args: argparse.Namespace,
    url: str,
    record: Path,
    window: tuple[float, float],
    counts: tuple[int, int, int, float],
    drain_seconds: float,
) -> None:
    t0, t1 = window
    created, backlog0, backlog1, load0 = counts
    first: dict[str, float] = {}
    bad = 0
    for line in record.read_text().splitlines():
        webhook_id, at, ok = line.split("\t")
        bad += ok != "1"
        first.setdefault(webhook_id, float(at))
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT uid, extract(epoch FROM created_at) FROM ops.webhook_messages "
            "WHERE created_at >= to_timestamp(%s) AND created_at < to_timestamp(%s)",
            (t0, t1),
        ).fetchall()
        version = conn.execute("SHOW server_version").fetchone()
    delivered = sum(1 for at in first.values() if t0 <= at < t1)
    latencies = [first[uid] - float(created_at) for uid, created_at in rows if uid in first]
    seconds = t1 - t0
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()}, PostgreSQL {version[0] if version else '?'}, load "
        f"average {load0:.1f} at the start of the window"
    )
    print(
        f"setup: {args.workers} workers x concurrency {args.concurrency}, one endpoint, "
        f"receiver verifying every signature (standardwebhooks)"
    )
    print(f"offered:   {created / seconds:8,.0f} messages/s over {seconds:.0f} s")
    print(f"delivered: {delivered / seconds:8,.0f} deliveries/s (first arrivals in the window)")
    print(
        f"backlog:   {backlog0:,} pending at the start, {backlog1:,} at the end; drained "
        f"{drain_seconds:.1f} s after the producer stopped"
    )
    print(
        f"creation -> delivery: p50 {pct(latencies, 0.5):.3f} s, p99 "
        f"{pct(latencies, 0.99):.3f} s, max {max(latencies, default=float('nan')):.3f} s "
        f"({len(latencies):,} messages)"
    )
    print(f"signature failures at the receiver: {bad}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=2500.0, help="messages a second offered")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp)) as admin, database(admin) as url:
        run(args, url, Path(tmp))


if __name__ == "__main__":
    main()
