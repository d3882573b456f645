"""The benchmark's per-client PostgreSQL CPU: a busy client's backends are counted, others not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from functools import partial

import psycopg
import pytest

from bench.pgcpu import backend_cpu, cpu_window, io_worker_cpu, postmaster_pid
from tests.conftest import REPO

BUSY = "SELECT count(*) FROM generate_series(1, 20000000)"


def _busy(url: str, application_name: str) -> None:
    with psycopg.connect(url, application_name=application_name) as conn:
        conn.execute("SET max_parallel_workers_per_gather = 0")
        conn.execute(BUSY)


def test_backend_cpu_counts_the_named_clients_backends_only(db_url: str) -> None:
    with (
        backend_cpu(db_url, "bench-busy") as busy,
        backend_cpu(db_url, "bench-idle") as idle,
        psycopg.connect(db_url, application_name="bench-idle"),
    ):
        _busy(db_url, "bench-busy")
    assert busy.seconds() > 0.2
    assert idle.seconds() < 0.05


def test_cpu_window_sees_the_load_in_total_and_own(db_url: str) -> None:
    # One long-lived connection, as the exporters keep: a backend that exits in the window
    # is a zombie until PostgreSQL reaps it, and /proc shows a zombie's CPU as zero.
    with psycopg.connect(db_url, application_name="bench-window") as conn:
        conn.execute("SET max_parallel_workers_per_gather = 0")
        window = cpu_window(
            postmaster_pid(db_url), 2.0, db_url, "bench-window", load=partial(conn.execute, BUSY)
        )
    assert window.own > 3.0  # CPU s/min: a backend busy for most of the window
    assert window.total >= window.own * 0.9


def test_io_worker_cpu_follows_the_servers_io_workers(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT current_setting('io_method', true)").fetchone()
        workers = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'io worker'"
        ).fetchone()
    assert row is not None
    assert workers is not None
    if row[0] != "worker":
        pytest.skip(f"the server reads in its backends (io_method {row[0]!r}): no io workers")
    with io_worker_cpu(db_url) as io:
        time.sleep(0.6)
    assert io.processes() == workers[0] > 0
    assert io.seconds() >= 0.0


def _measure(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "bench.pgcpu", "--application", "bench-cli", "--seconds", "1"]
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        argv,
        check=False,
        env={**environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_command_measures_a_running_server_and_needs_one(db_url: str) -> None:
    done = _measure({"DATABASE_URL": db_url})
    assert done.returncode == 0, done.stderr
    assert "CPU s/min, bench-cli's backends 0.00, io workers " in done.stdout
    refused = _measure({})
    assert refused.returncode == 2
    assert "DATABASE_URL" in refused.stderr
