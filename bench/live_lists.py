"""Live lists benchmark: commit-to-screen latency and the tail's database cost for 1, 100 and
500 concurrent viewers of the payments list.

``opsdeck api`` serves a day of simulator history; a writer commits payment attempts at
``--rate`` a second (statuses mixed as the live stream mixes them), and at each level that
many real SSE clients (httpx, one connection each) follow ``/api/v1/payments/live``, a third
unfiltered, a third ``status=captured``, a third ``status=failed``. For ``--seconds`` it
records, per delivered row, the time from the writer's COMMIT returning to the client
reading the event, and from PostgreSQL what the tail costs:

- ``tail stmts/s`` and ``windows/s``: the statements the tail ran (horizon readings and
  window queries), as the API counts them (``opsdeck_live_tail_statements_total``);
- ``idx scans/s``: scans of ``platform.transactions``' ``updated_at`` index as PostgreSQL
  counts them (``pg_stat_user_indexes``); only the tail reads it here, and each window
  query scans it once and its planning probes its end twice;
- ``xacts/s``: transactions of the benchmark database (``pg_stat_database``) less the
  writer's own: the tail's horizon readings and windows, plus the API's session checks.

    python -m bench.live_lists                    # the figures in docs/benchmarks.md
    python -m bench.live_lists --levels 1,100 --seconds 20

Uses DATABASE_URL's server and REDIS_URL when set, else embedded ones (data under
.opsdeck/bench/).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from redis.asyncio import Redis

from api.accounts import Admin, add_user
from api.auth.sessions import COOKIE, SessionStore
from api.rbac import Role
from api.signing import Keys
from bench.event_stream import server_events
from bench.history import admin_url as bench_admin_url
from core.application_names import SIMULATOR
from core.audit import use_key
from core.database import libpq_url
from core.migrate import migrate
from core.sealed_secrets import new_key
from core.settings import SimulatorSettings
from opsdeck.embedded import EmbeddedRedis, free_port
from opsdeck.supervisor import Service, Supervisor, http_ready
from simulator.backfill import BackfillPlan, run_backfill
from simulator.vocabulary import SCALES

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / ".opsdeck" / "bench"
SECRET = "bench-secret-key-0123456789-0123456789-0123456789"
DATABASE = "opsdeck_bench_live"
FILTERS = ("", "?status=captured", "?status=failed")
STATUSES = ("captured", "captured", "authorized", "failed")
INDEX = "transactions_updated"
SETTLE_SECONDS = 3.0
AUDIT_CHAIN_KEY = "bench-audit-chain-key-0123456789-abcdefghij"


@dataclass
class Level:
    viewers: int
    latencies: list[float] = field(default_factory=list)
    committed: int = 0
    windows: int = 0
    statements: int = 0
    scans: int = 0
    xacts: int = 0
    seconds: float = 0.0
    refused: int = 0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] * 1000


class Writer:
    """Commits payment attempts at a steady rate on its own thread; when each commit
    returned, by transaction id."""

    def __init__(self, url: str, rate: float) -> None:
        self.url = url
        self.rate = rate
        self.committed: dict[str, float] = {}
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="writer")

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(self.url, application_name=SIMULATOR) as conn:
            customer = (conn.execute("SELECT min(id) FROM platform.customers").fetchone() or [1])[0]
            (next_id,) = conn.execute(
                "SELECT max(id) + 1000 FROM platform.transactions"
            ).fetchone() or (1,)
            conn.commit()
            due = time.monotonic()
            n = 0
            while not self.stop.is_set():
                status = STATUSES[n % len(STATUSES)]
                conn.execute(
                    "INSERT INTO platform.transactions (id, customer_id, amount_cents, currency, "
                    "status, psp, payment_intent_id, livemode, failed_at) VALUES "
                    "(%s, %s, 1000, 'USD', %s, 'stripe', %s, true, "
                    "CASE WHEN %s = 'failed' THEN now() END)",
                    (next_id + n, customer, status, f"pi_bench_{next_id + n}", status),
                )
                conn.commit()
                self.committed[str(next_id + n)] = time.time()
                n += 1
                due += 1 / self.rate
                self.stop.wait(max(0.0, due - time.monotonic()))


async def tail_statements(client: httpx.AsyncClient) -> tuple[int, int]:
    """The tail's statements (all, windows) so far, from the API's /metrics."""
    page = (await client.get("/metrics")).text
    counts = {"horizon": 0, "window": 0}
    for line in page.splitlines():
        if line.startswith("opsdeck_live_tail_statements_total{"):
            labels, _, value = line.rpartition(" ")
            kind = labels.split('kind="')[1].split('"')[0]
            counts[kind] += int(float(value))
    return counts["horizon"] + counts["window"], counts["window"]


def counters(url: str) -> tuple[int, int]:
    """The tail's window scans and the database's transactions, as PostgreSQL counts them."""
    with psycopg.connect(url, autocommit=True) as conn:
        scans = conn.execute(
            "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = %s", (INDEX,)
        ).fetchone()
        xacts = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
    return int(scans[0] if scans else 0), int(xacts[0] if xacts else 0)


async def follow(
    client: httpx.AsyncClient,
    path: str,
    received: list[tuple[str, float]],
    opened: asyncio.Event,
    level: Level,
) -> None:
    async with client.stream("GET", path, headers={"Accept": "text/event-stream"}) as response:
        if response.status_code != 200:
            level.refused += 1
            opened.set()
            return
        async for event in server_events(response):
            opened.set()
            if event.kind == "rows":
                now = time.time()
                received += [(row["key"], now) for row in event.json()["rows"]]


async def measure(
    base: str, cookie: str, url: str, writer: Writer, viewers: int, seconds: float
) -> Level:
    level = Level(viewers)
    received: list[list[tuple[str, float]]] = [[] for _ in range(viewers)]
    limits = httpx.Limits(max_connections=viewers + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base, cookies={COOKIE: cookie}, timeout=None, limits=limits
    ) as client:
        opened = [asyncio.Event() for _ in range(viewers)]
        tasks = [
            asyncio.create_task(
                follow(
                    client,
                    f"/api/v1/payments/live{FILTERS[i % 3]}",
                    received[i],
                    opened[i],
                    level,
                )
            )
            for i in range(viewers)
        ]
        for event in opened:
            await event.wait()
        await asyncio.sleep(SETTLE_SECONDS)
        start_scans, start_xacts = await asyncio.to_thread(counters, url)
        start_statements, start_windows = await tail_statements(client)
        first = len(writer.committed)
        began = time.monotonic()
        await asyncio.sleep(seconds)
        level.seconds = time.monotonic() - began
        end_statements, end_windows = await tail_statements(client)
        end_scans, end_xacts = await asyncio.to_thread(counters, url)
        level.committed = len(writer.committed) - first
        await asyncio.sleep(SETTLE_SECONDS)  # the last rows' way to the clients
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    level.statements = end_statements - start_statements
    level.windows = end_windows - start_windows
    level.scans = end_scans - start_scans
    level.xacts = end_xacts - start_xacts - level.committed
    wanted = set(list(writer.committed)[first : first + level.committed])
    for stream in received:
        for key, at in stream:
            if key in wanted:
                level.latencies.append(at - writer.committed[key])
    return level


def prepare(admin: str) -> str:
    url = libpq_url(admin).rpartition("/")[0] + "/" + DATABASE
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    migrate(url, url)
    plan = BackfillPlan(1, SCALES["small"], 1, datetime.now(UTC).replace(microsecond=0))
    run_backfill(url, plan, SimulatorSettings(), lambda table, rows: None)
    return url


async def session(url: str, redis_url: str) -> str:
    with psycopg.connect(url) as conn:
        add_user(Admin("bench", conn, None), "live-bench", Role.FINANCE, "x" * 20, False)
        (user_id, version) = conn.execute(
            "SELECT id, session_version FROM ops.users WHERE username = 'live-bench'"
        ).fetchone() or (0, 0)
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        _, cookie = await SessionStore(redis, Keys(SECRET).session, 86400).create(user_id, version)
    finally:
        await redis.aclose()
    return cookie


def serve(supervisor: Supervisor, url: str, redis_url: str) -> str:
    port = free_port(0)
    base = f"http://127.0.0.1:{port}"
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "OPSDECK_API__SECRET_KEY": SECRET,
        "OPSDECK_SECRETS_KEY": new_key(),
        "OPSDECK_AUDIT__CHAIN_KEY": AUDIT_CHAIN_KEY,
        "OPSDECK_API__REQUESTS_PER_MINUTE": "100000000",
        "OPSDECK_LIVE__STREAMS_PER_USER": "1000",
        "OPSDECK_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
    }
    argv = [sys.executable, "-m", "opsdeck", "api", "--port", str(port)]
    log = DATA / "live-api-server.log"
    supervisor.start(Service("api", argv, log, env=env, ready=http_ready(f"{base}/readyz")))
    return base


def report(level: Level) -> None:
    per_second = level.seconds or 1.0
    print(
        f"{level.viewers:>8} {level.committed:>9} {len(level.latencies):>9} "
        f"{level.pct(0.5):>8.0f} {level.pct(0.99):>8.0f} {level.pct(1.0):>8.0f} "
        f"{level.statements / per_second:>11.2f} {level.windows / per_second:>10.2f} "
        f"{level.scans / per_second:>12.2f} {level.xacts / per_second:>9.2f} "
        f"{level.refused:>8}",
        flush=True,
    )


async def run(base: str, cookie: str, url: str, args: argparse.Namespace) -> None:
    print(
        f"\npayments committed at {args.rate:g}/s; {args.seconds:g} s per level; "
        "latency = COMMIT returned -> SSE event read by the client"
    )
    print(
        f"{'viewers':>8} {'commits':>9} {'rows recv':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'tail stmts/s':>11} {'windows/s':>10} {'idx scans/s':>12} "
        f"{'xacts/s':>9} {'refused':>8}"
    )
    with Writer(url, args.rate) as writer:
        for viewers in (int(v) for v in args.levels.split(",")):
            report(await measure(base, cookie, url, writer, viewers, args.seconds))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="1,100,500", help="concurrent viewers per level")
    parser.add_argument("--rate", type=float, default=10.0, help="payments committed a second")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time per level")
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"machine: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start"
    )
    use_key(AUDIT_CHAIN_KEY)
    supervisor = Supervisor()
    try:
        admin = bench_admin_url(supervisor)
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            redis = EmbeddedRedis(DATA / "redis-live", free_port(0))
            supervisor.start(redis.service(DATA / "redis-live.log"))
            redis_url = redis.url
        url = prepare(admin)
        cookie = asyncio.run(session(url, redis_url))
        base = serve(supervisor, url, redis_url)
        asyncio.run(run(base, cookie, url, args))
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    main()
