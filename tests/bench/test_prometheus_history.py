"""Half a day of opsdeck's series replayed from a real history into a real Prometheus: the
counters equal plain SQL at the end and never go back, the served data answers instant and
range queries with the replayed values, and the recording rules' series exist."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest

from bench.prometheus_history import (
    COUNTER_SUFFIXES,
    Written,
    build,
    history_end,
    openmetrics,
    prove,
)
from bench.prometheus_server import PROMETHEUS, PROMTOOL, serve
from bench.replay import Grid, Replay, replay
from bench.rules_backfill import levels, recording_groups
from core.settings import Settings
from tests.conftest import scratch_database

pytestmark = pytest.mark.skipif(
    not (Path(PROMTOOL).exists() and Path(PROMETHEUS).exists()),
    reason=f"{PROMTOOL} and {PROMETHEUS} are needed (Debian package prometheus)",
)
DAYS = 0.5
STEP = 15.0


@dataclass
class Built:
    data: Path
    grid: Grid
    replayed: Replay
    url: str  # the history database


@pytest.fixture(scope="module")
def built(
    admin_url: str, history_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    out = tmp_path_factory.mktemp("prometheus-history")
    with scratch_database(admin_url, history_template) as url:
        data = build(url, out, days=DAYS, step=STEP)
        with psycopg.connect(url) as conn:
            grid = Grid.ending(history_end(conn), DAYS, STEP)
            yield Built(data, grid, replay(conn, Settings(), grid), url)
    shutil.rmtree(out)


@pytest.fixture(scope="module")
def prometheus(built: Built) -> Iterator[str]:
    with serve(built.data) as url:
        yield url


def _query(url: str, path: str, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/{path}", params=params, timeout=60)
    assert response.status_code == 200, response.text
    return list(response.json()["data"]["result"])


def test_replayed_counters_equal_plain_sql_at_the_end(built: Built) -> None:
    with psycopg.connect(built.url) as conn:
        checked = prove(conn, Settings(), built.replayed)
    assert checked > 50  # every payment, API, booking and activity counter


def test_the_proof_finds_a_counter_that_differs(built: Built) -> None:
    tampered = Replay(built.grid)
    for (name, labels), values in built.replayed.series():
        extra = 1.0 if name == "opsdeck_site_sessions_total" else 0.0
        tampered.set(name, dict(labels), values + extra)
    with psycopg.connect(built.url) as conn, pytest.raises(AssertionError) as failed:
        prove(conn, Settings(), tampered)
    assert "opsdeck_site_sessions_total" in str(failed.value)


def test_openmetrics_skips_absent_samples_and_writes_whole_numbers_whole() -> None:
    grid = Grid(first=100, count=3, step=STEP)
    series = [
        Written('a_total{job="j"} ', np.array([1.0, 2.0, 3.0]), integral=True),
        Written('b{job="j"} ', np.array([np.nan, 0.5, 0.25]), integral=False),
    ]
    assert "".join(openmetrics(series, grid, 1, 3)) == (
        'a_total{job="j"} 2 1515\n'
        'a_total{job="j"} 3 1530\n'
        'b{job="j"} 0.5 1515\n'
        'b{job="j"} 0.25 1530\n'
        "# EOF\n"
    )


def test_counters_never_decrease(built: Built) -> None:
    counters = {k: v for k, v in built.replayed.series() if k[0].endswith(COUNTER_SUFFIXES)}
    assert counters
    backwards = [key for key, values in counters.items() if np.any(np.diff(values) < 0)]
    assert backwards == []
    grown = [key for key, values in counters.items() if values[-1] > values[0]]
    assert len(grown) > 20  # half a day of traffic moves most of them


def test_an_instant_query_reads_the_last_sample(built: Built, prometheus: str) -> None:
    end = built.grid.end.timestamp()
    for name in ("opsdeck_bookings_confirmed_total", "opsdeck_site_sessions_total"):
        expected = dict(built.replayed.series())[(name, ())][-1]
        (result,) = _query(prometheus, "query", query=name, time=end)
        assert result["metric"]["job"] == "opsdeck-exporter"
        assert float(result["value"][1]) == expected


def test_a_range_query_has_one_point_per_step(built: Built, prometheus: str) -> None:
    grid = built.grid
    (result,) = _query(
        prometheus,
        "query_range",
        query="opsdeck_bookings_confirmed_total",
        start=grid.start.timestamp(),
        end=grid.end.timestamp(),
        step=STEP,
    )
    assert len(result["values"]) == grid.count
    served = np.array([float(v) for _, v in result["values"]])
    replayed = dict(built.replayed.series())[("opsdeck_bookings_confirmed_total", ())]
    assert np.array_equal(served, replayed)


def test_modelled_processes_are_up_under_their_scrape_jobs(built: Built, prometheus: str) -> None:
    end = built.grid.end.timestamp()
    jobs = {r["metric"]["job"] for r in _query(prometheus, "query", query="up", time=end)}
    assert jobs == {"opsdeck-api", "opsdeck-exporter", "opsdeck-worker"}


def test_the_recording_rules_series_exist(built: Built, prometheus: str) -> None:
    end = built.grid.end.timestamp()
    records = [rule["record"] for group in recording_groups() for rule in group["rules"]]
    missing = [
        record
        for record in records
        if not _query(prometheus, "query", query=f"count_over_time({record}[1d])", time=end)
    ]
    assert missing == []


def test_rules_are_evaluated_after_the_rules_they_read() -> None:
    level = {
        rule["record"]: n
        for n, groups in enumerate(levels(recording_groups()), start=1)
        for group in groups
        for rule in group["rules"]
    }
    assert level["opsdeck:bookings_confirmed:per_minute"] == 1
    assert level["opsdeck:bookings_confirmed:per_minute:avg1h"] == 2
    assert level["opsdeck:bookings_confirmed:per_minute:zscore1h"] == 3
    assert level["opsdeck:booking_conflict_rate:ratio24h"] == 2
