"""Drilldown API benchmark: page latency for every filter combination, full-text search,
and CSV export throughput and memory, against ``opsdeck api`` serving simulator history.

For each case it times the first page and the page after it (keyset cursor) over HTTP,
``--iterations`` times, and prints p50/p99/max per case and over all cases; then full-text
searches; then a 1 M-row CSV export of payments and of API logs, with the server's peak RSS.

    python -m bench.drilldown_api --scale medium          # during development
    python -m bench.drilldown_api --scale large --reuse   # the figures in docs/benchmarks.md

Uses DATABASE_URL's server and REDIS_URL when set, else embedded ones (data under
.opsdeck/bench/). ``--reuse`` keeps the backfilled database between runs.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
import psycopg

from api.accounts import AccountError, Admin, add_user, create_key, key_owner
from api.rbac import Role
from bench.history import admin_url as bench_admin_url
from bench.history import history
from core.audit import use_key
from core.sealed_secrets import SecretBox, new_key
from opsdeck.embedded import EmbeddedRedis, free_port
from opsdeck.supervisor import Service, Supervisor, http_ready
from simulator.vocabulary import SCALES

REPO = Path(__file__).resolve().parent.parent
EXPORT_ROWS = 1_000_000
SECRET = "bench-secret-key-0123456789-0123456789-0123456789"
# The audit trail's chain key of the benchmark's databases: the same in every run, so a
# reused history's trail still verifies.
AUDIT_CHAIN_KEY = "bench-audit-chain-key-0123456789-0123456789"
PAGE_BUDGET_MS = 100.0
SEARCH_BUDGET_MS = 100.0
PARTS = ("pages", "search", "export")


@dataclass
class Timing:
    case: str
    window: str
    samples: list[float] = field(default_factory=list)

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


# -- data -----------------------------------------------------------------------------------


def samples(url: str) -> dict[str, Any]:
    """Real values to filter by: busy ones, as people click on what they see."""
    queries = {
        "location": "SELECT location_id FROM platform.bookings GROUP BY 1 "
        "ORDER BY count(*) DESC LIMIT 1",
        "staff": "SELECT staff_id FROM platform.bookings WHERE staff_id IS NOT NULL "
        "ORDER BY id DESC LIMIT 1",
        "resource": "SELECT resource_id FROM platform.bookings ORDER BY id DESC LIMIT 1",
        "customer": "SELECT customer_id FROM platform.transactions ORDER BY id DESC LIMIT 1",
        "psp_id": "SELECT psp_id FROM platform.transactions ORDER BY id DESC LIMIT 1",
        "intent": "SELECT payment_intent_id FROM platform.transactions WHERE attempt > 1 "
        "ORDER BY id DESC LIMIT 1",
        "account": "SELECT account_id FROM platform.api_logs WHERE account_id IS NOT NULL "
        "ORDER BY id DESC LIMIT 1",
        "key": "SELECT api_key_id FROM platform.api_logs WHERE api_key_id IS NOT NULL "
        "ORDER BY id DESC LIMIT 1",
        "request": "SELECT request_id FROM platform.api_logs ORDER BY id DESC LIMIT 1",
    }
    with psycopg.connect(url) as conn:
        return {k: (conn.execute(q).fetchone() or (None,))[0] for k, q in queries.items()}


def page_cases(s: dict[str, Any]) -> list[str]:
    return [
        "bookings",
        f"bookings?location_id={s['location']}",
        f"bookings?staff_id={s['staff']}&status=confirmed",
        f"bookings?resource_id={s['resource']}",
        "bookings?status=cancelled&status=failed",
        f"bookings?location_id={s['location']}&status=pending",
        f"bookings?customer_id={s['customer']}",
        "bookings?sort=start_at",
        "payments",
        "payments?status=failed",
        "payments?status=captured&card_brand=amex",
        "payments?failure_code=insufficient_funds",
        "payments?card_brand=discover&status=failed&failure_code=card_declined",
        "payments?attempt=2",
        "payments?livemode=false",
        "payments?livemode=all&status=refunded",
        "payments?psp=paystack&currency=NGN",
        f"payments?customer_id={s['customer']}",
        f"payments?payment_intent_id={s['intent']}",
        f"payments?q={s['psp_id']}",
        f"payments?q={s['customer']}",
        "payments?sort=amount_cents&order=desc",
        "reconciliation",
        "reconciliation?reconciliation=mismatch&reconciliation=missing",
        "refunds",
        "payouts?status=held",
        "api-logs",
        "api-logs?status_class=5xx",
        "api-logs?status=404",
        "api-logs?method=POST&route=/v1/payment_intents/{id}/confirm",
        f"api-logs?account_id={s['account']}",
        f"api-logs?api_key_id={s['key']}",
        "api-logs?path_prefix=/v1/bookings/bk_12",
        "api-logs?error_type=card_error",
        "api-logs?min_duration_ms=2000",
        "api-logs?livemode=false&status_class=4xx",
        f"api-logs?request_id={s['request']}",
        "api-logs?sort=duration_ms",
        "usage?group=account",
        "usage?period=month&group=route",
        f"usage?account_id={s['account']}",
        "incidents",
        "audit",
    ]


def search_cases(s: dict[str, Any]) -> list[str]:
    return [
        "api-logs?q=lock wait timeout",
        'api-logs?q="Bad gateway"',
        "api-logs?q=bookings_1234",
        "api-logs?q=declined",
        "api-logs?q=timeout -calendar",
        f"api-logs?q={s['request']}",
        "api-logs?q=payment_intents 4242&status_class=2xx",
    ]


# -- measuring ------------------------------------------------------------------------------


def time_case(client: httpx.Client, case: str, window: str, iterations: int) -> Timing:
    separator = "&" if "?" in case else "?"
    url = f"/api/v1/{case}{separator}from=now-{window}&limit=50"
    timing = Timing(case, window)
    for _ in range(iterations):
        started = time.perf_counter()
        response = client.get(url)
        timing.samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code} {response.text[:200]}")
        cursor = response.json()["next_cursor"]
        if cursor:
            started = time.perf_counter()
            following = client.get(f"{url}&cursor={quote(cursor)}")
            timing.samples.append((time.perf_counter() - started) * 1000)
            following.raise_for_status()
    return timing


def report(title: str, timings: list[Timing], budget: float) -> None:
    print(f"\n{title} (first page + next page, ms over HTTP; budget p99 < {budget:g} ms)")
    print(f"{'case':<72}{'window':>7}{'n':>6}{'p50':>8}{'p99':>8}{'max':>8}")
    for t in timings:
        flag = "" if t.pct(0.99) < budget else "  OVER"
        print(
            f"{t.case[:71]:<72}{t.window:>7}{len(t.samples):>6}{t.pct(0.5):>8.1f}"
            f"{t.pct(0.99):>8.1f}{max(t.samples):>8.1f}{flag}"
        )
    every = Timing("all", "")
    every.samples = [v for t in timings for v in t.samples]
    worst = max(timings, key=lambda t: t.pct(0.99))
    print(
        f"all cases: {len(every.samples):,} requests, p50 {every.pct(0.5):.1f} ms, "
        f"p99 {every.pct(0.99):.1f} ms; worst case p99 {worst.pct(0.99):.1f} ms ({worst.case}, "
        f"{worst.window})"
    )


def rss_mib(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def export(client: httpx.Client, path: str, pid: int) -> None:
    peak = [rss_mib(pid)]
    baseline = peak[0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak.append(rss_mib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rows, size = -1, 0
    started = time.perf_counter()
    with client.stream("GET", path, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            rows += chunk.count(b"\n")
            size += len(chunk)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    print(
        f"{path}\n  {rows:,} rows, {size / 2**20:,.0f} MiB in {seconds:.1f} s: "
        f"{rows / seconds:,.0f} rows/s; server RSS {baseline:.0f} MiB before, "
        f"{max(peak):.0f} MiB peak"
    )


def export_window(url: str, table: str, column: str) -> str:
    """The shortest recent window holding at least EXPORT_ROWS rows (the whole table if less)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT min({column}) FROM (SELECT {column} FROM platform.{table} "
            f"ORDER BY {column} DESC LIMIT {EXPORT_ROWS}) r"
        ).fetchone()
    assert row is not None
    return str(int(row[0].timestamp() * 1000))


# -- running --------------------------------------------------------------------------------


def wait_for_usage(url: str, timeout: float) -> None:
    """The server's roll-up worker folds the backfilled logs before usage can be measured."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        while time.perf_counter() - started < timeout:
            behind = conn.execute(
                "SELECT now() - folded_until < interval '1 minute' FROM ops.api_usage_rollup"
            ).fetchone()
            if behind and behind[0]:
                print(f"usage roll-up caught up in {time.perf_counter() - started:.0f} s")
                return
            time.sleep(2)
    raise SystemExit("the usage roll-up did not catch up")


def serve(
    supervisor: Supervisor, url: str, redis_url: str, log: Path, secrets_key: str
) -> tuple[int, str]:
    """``opsdeck api`` on a free port: its pid and base URL."""
    port = free_port(0)
    base = f"http://127.0.0.1:{port}"
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "OPSDECK_API__SECRET_KEY": SECRET,
        "OPSDECK_SECRETS_KEY": secrets_key,
        "OPSDECK_AUDIT__CHAIN_KEY": AUDIT_CHAIN_KEY,
        "OPSDECK_API__REQUESTS_PER_MINUTE": "100000000",
        "OPSDECK_API__STATEMENT_TIMEOUT_SECONDS": "120",
        "PYTHONPATH": str(REPO),
    }
    argv = [sys.executable, "-m", "opsdeck", "api", "--port", str(port)]
    service = Service(
        name="api", argv=argv, log_file=log, env=env, ready=http_ready(f"{base}/readyz")
    )
    return supervisor.start(service).pid, base


def _bench_key(admin: Admin) -> str:
    """A super admin's key for the benchmark client; keys belong to users."""
    try:
        key_owner(admin, "bench")
    except AccountError:
        add_user(admin, "bench", Role.SUPER_ADMIN, secrets.token_urlsafe(24), two_factor=True)
    token, _ = create_key(admin, "bench", "bench", Role.SUPER_ADMIN, [])
    return token


def run(supervisor: Supervisor, url: str, redis_url: str, args: argparse.Namespace) -> None:
    secrets_key = new_key()  # seals the benchmark user's TOTP secret, and the server opens it
    use_key(AUDIT_CHAIN_KEY)
    with psycopg.connect(url) as conn:
        token = _bench_key(Admin("bench", conn, None, SecretBox(secrets_key)))
        conn.execute("ANALYZE")
    log = REPO / ".opsdeck" / "bench" / "api-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    pid, base = serve(supervisor, url, redis_url, log, secrets_key)
    wait_for_usage(url, timeout=3600)
    values = samples(url)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        windows = args.windows.split(",")
        cases = {"pages": page_cases(values), "search": search_cases(values)}
        for part in ("pages", "search"):
            if part in args.parts:
                for case in cases[part]:  # warm the caches once
                    time_case(client, case, windows[0], 1)
        if "pages" in args.parts:
            pages = [
                time_case(client, c, w, args.iterations) for w in windows for c in cases["pages"]
            ]
            report("Pages", pages, PAGE_BUDGET_MS)
        if "search" in args.parts:
            searches = [
                time_case(client, c, w, args.iterations) for w in windows for c in cases["search"]
            ]
            report("Full-text search", searches, SEARCH_BUDGET_MS)
        if "export" in args.parts:
            print(f"\nCSV export of {EXPORT_ROWS:,} rows (streamed; PII masked row by row)")
            payments_from = export_window(url, "transactions", "created_at")
            logs_from = export_window(url, "api_logs", "started_at")
            export(client, f"/api/v1/payments/export?livemode=all&from={payments_from}", pid)
            export(client, f"/api/v1/api-logs/export?livemode=all&from={logs_from}", pid)


def parts(text: str) -> tuple[str, ...]:
    """``--parts``: a comma-separated subset of PARTS; anything else is refused."""
    chosen = tuple(p for p in text.split(",") if p)
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown part(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(PARTS)}"
        )
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default="medium")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--windows", default="24h,7d", help="Grafana ranges to page over")
    parser.add_argument("--reuse", action="store_true", help="keep and reuse the database")
    parser.add_argument(
        "--parts", type=parts, default=PARTS, help=f"what to measure, of {','.join(PARTS)}"
    )
    args = parser.parse_args()
    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}")
    supervisor = Supervisor()
    data = REPO / ".opsdeck" / "bench"
    try:
        admin_url = bench_admin_url(supervisor)
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            redis = EmbeddedRedis(data / "redis-api", free_port(0))
            supervisor.start(redis.service(data / "redis-api.log"))
            redis_url = redis.url
        with psycopg.connect(admin_url) as conn:
            print("postgres:", (conn.execute("SHOW server_version").fetchone() or ("?",))[0])
        url, _ = history(admin_url, args.scale, args.reuse)
        run(supervisor, url, redis_url, args)
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    main()
