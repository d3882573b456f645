"""The dashboard benchmark's measuring parts: six panels in flight at most and a slow one
holding only its own connection, a panel's queries sent together, the load timed until
its last panel answered, failures named; then whole loads of committed dashboards against
a real Prometheus and a real database as Grafana's read-only role."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from bench.dashboard_load import (
    Grafana,
    Load,
    LoadFailed,
    PanelTime,
    QueryFailed,
    QueryTime,
    grafana_pool,
    load,
    run_panels,
)
from bench.dashboards import Series, parse, report
from dashboards.catalog import BOARDS
from dashboards.grafana_queries import PanelQueries, Query, visible_panels
from dashboards.grafana_time import Window, datasources
from dashboards.grafana_variables import VariableRequest
from opsdeck.embedded import free_port
from opsdeck.supervisor import Service, Supervisor, http_ready
from tests.conftest import REPO

SOURCES = datasources()
PROMETHEUS_DS = {"type": "prometheus", "uid": "${datasource}"}
DATASOURCE_VARIABLE = {
    "type": "datasource",
    "name": "datasource",
    "query": "prometheus",
    "current": {"value": "opsdeck-prometheus"},
}


def _panels(count: int, queries: int = 1) -> list[PanelQueries]:
    return [
        PanelQueries(f"p{i}", tuple(Query(chr(65 + r), "instant", f"p{i}") for r in range(queries)))
        for i in range(count)
    ]


def _run(coroutine: Awaitable[Any], timeout: float = 20) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coroutine, timeout)

    return asyncio.run(bounded())


def test_never_more_than_six_panels_in_flight() -> None:
    in_flight, most = 0, 0

    async def execute(query: Query) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1

    times = _run(run_panels(_panels(20), execute, time.perf_counter()))
    assert most == 6
    assert len(times) == 20


def test_a_slow_panel_holds_only_its_own_connection() -> None:
    """The first panel answers only once all nineteen others have: were panels sent in
    batches of six, or in order, this would never finish."""
    others_done = asyncio.Event()
    done = 0

    async def execute(query: Query) -> None:
        nonlocal done
        if query.text == "p0":
            await others_done.wait()
            return
        await asyncio.sleep(0.005)
        done += 1
        if done == 19:
            others_done.set()

    times = _run(run_panels(_panels(20), execute, time.perf_counter()), timeout=10)
    slow = times[0]
    assert all(t.finished <= slow.finished for t in times)


def test_a_panels_queries_go_out_together() -> None:
    """Each of a panel's three queries waits until all three are in flight."""
    arrived = 0
    all_in = asyncio.Event()

    async def execute(query: Query) -> None:
        nonlocal arrived
        arrived += 1
        if arrived == 3:
            all_in.set()
        await all_in.wait()

    (panel,) = _run(run_panels(_panels(1, queries=3), execute, time.perf_counter()), timeout=5)
    assert [q.query.ref for q in panel.queries] == ["A", "B", "C"]


class Scripted:
    """Queries that take the seconds their expression names, or fail when it says so."""

    def __init__(self, fetch_seconds: float = 0.0) -> None:
        self.fetch_seconds = fetch_seconds

    async def execute(self, query: Query) -> None:
        if query.text.startswith("fail"):
            raise QueryFailed("HTTP 400: parse error")
        await asyncio.sleep(float(query.text.split()[-1]))

    async def fetch(self, request: VariableRequest) -> Any:
        await asyncio.sleep(self.fetch_seconds)
        return ["a", "b"]


def _board(exprs: dict[str, str], variables: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    panels = [
        {
            "id": i,
            "type": "stat",
            "title": title,
            "gridPos": {"x": 0, "y": i, "w": 6},
            "datasource": PROMETHEUS_DS,
            "targets": [{"refId": "A", "expr": expr, "instant": True, "datasource": PROMETHEUS_DS}],
        }
        for i, (title, expr) in enumerate(exprs.items())
    ]
    return {"panels": panels, "templating": {"list": [DATASOURCE_VARIABLE, *(variables or [])]}}


WINDOW = Window(1_764_000_000 - 86_400, 1_764_000_000)


def test_the_load_lasts_until_its_last_panel_answered() -> None:
    board = _board({"quick": "x 0.01", "slow": "x 0.3", "middling": "x 0.1"})
    result = _run(load(board, WINDOW, SOURCES, Scripted()))
    by_name = {p.name.split(" (")[0]: p for p in result.panels}
    assert result.seconds == max(p.finished for p in result.panels)
    assert result.seconds == by_name["slow"].finished
    assert result.seconds >= 0.3
    assert by_name["quick"].seconds < by_name["slow"].seconds


def test_variable_requests_come_first_and_count() -> None:
    variable = {"type": "query", "name": "v", "query": "label_values(v)", "current": {}}
    board = _board({"one": "x 0.01"}, [variable])
    result = _run(load(board, WINDOW, SOURCES, Scripted(fetch_seconds=0.2)))
    assert result.variables_seconds >= 0.2
    assert all(p.started >= result.variables_seconds for p in result.panels)


def test_a_failure_names_the_panel_and_the_query() -> None:
    board = _board({"fine": "x 0.01", "Broken Tile": "fail now"})
    with pytest.raises(LoadFailed, match=r"Broken Tile \(panel 1\) query A: HTTP 400: parse error"):
        _run(load(board, WINDOW, SOURCES, Scripted()))


def test_unknown_arguments_are_refused() -> None:
    with pytest.raises(SystemExit) as exited:
        parse(["--loads", "3", "--colour", "red"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit):
        parse(["--boards", "opsdeck-nope"])
    assert parse(["--ranges", "24h,7d", "--loads", "2"]).ranges == ["24h", "7d"]


def _timed_load(seconds: dict[str, float]) -> Load:
    panels = tuple(
        PanelTime(name, 0.0, took, (QueryTime(Query("A", "range", f"expr_{name}"), took),))
        for name, took in seconds.items()
    )
    return Load(max(seconds.values()), 0.0, panels)


def test_the_report_lists_the_slowest_queries_of_a_load_over_two_seconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    slow = {f"panel{i}": 0.1 * i for i in range(1, 8)} | {"heavy": 2.5}
    quick = Series("quick-board", "24h", _timed_load({"a": 0.2}), [_timed_load({"a": 0.3})] * 3)
    over = Series("slow-board", "30d", _timed_load(slow), [_timed_load(slow)] * 3)
    report([quick, over])
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.endswith(("0.300", "2.500"))}
    assert " ok " in rows["quick-board"]
    assert " OVER " in rows["slow-board"]
    assert "heavy" in rows["slow-board"]
    listed = out.split("slow-board over 30d: the 5 slowest queries")[1]
    assert [line.split()[3] for line in listed.splitlines() if "p99" in line] == [
        "heavy",
        "panel7",
        "panel6",
        "panel5",
        "panel4",
    ]
    assert "expr_heavy" in listed
    assert "quick-board over" not in out


# -- real services ----------------------------------------------------------------------------


def _prometheus_binary() -> str:
    found = shutil.which("prometheus")
    assert found, "prometheus is not installed (make test installs it: scripts/system-deps.sh)"
    return found


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping itself every second, with a few scrapes stored."""
    work = tmp_path_factory.mktemp("prometheus")
    port = free_port(0)
    config = work / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: prometheus\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n",
        encoding="utf-8",
    )
    supervisor = Supervisor()
    url = f"http://127.0.0.1:{port}"
    try:
        supervisor.start(
            Service(
                name="prometheus",
                argv=[
                    _prometheus_binary(),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={work / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                log_file=work / "prometheus.log",
                ready=http_ready(f"{url}/-/ready"),
            )
        )
        deadline = time.monotonic() + 60
        while not httpx.get(f"{url}/api/v1/query", params={"query": "up"}).json()["data"]["result"]:
            assert time.monotonic() < deadline, "Prometheus stored no scrape in 60 s"
            time.sleep(0.5)
        yield url
    finally:
        supervisor.stop_all()


def _with_grafana(url: str, prometheus: str, body: Callable[[Grafana], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        async with grafana_pool(url) as pool, httpx.AsyncClient(timeout=60) as http:
            return await body(Grafana(http, prometheus, pool))

    return _run(run(), timeout=120)


def _committed(uid: str) -> dict[str, Any]:
    (board,) = [b for b in BOARDS if b.uid == uid]
    return dict(json.loads((REPO / board.path).read_text(encoding="utf-8")))


def test_the_command_center_loads_from_real_services(prometheus: str, db_url: str) -> None:
    """Every PromQL and SQL query of the committed dashboard runs for real and succeeds
    (a self-scraping Prometheus holds none of opsdeck's series: the answers are empty)."""
    board = _committed("opsdeck-command-center")
    window = Window.ending(time.time(), "24h")
    result = _with_grafana(db_url, prometheus, lambda g: load(board, window, SOURCES, g))
    names = {p.name for p in result.panels}
    assert {f"{p['title']} (panel {p['id']})" for p in visible_panels(board)} <= names
    kinds = {q.query.kind for p in result.panels for q in p.queries}
    assert kinds == {"instant", "range", "sql"}
    assert result.seconds == max(p.finished for p in result.panels)


def test_real_refusals_are_named(prometheus: str, db_url: str) -> None:
    window = Window.ending(time.time(), "1h")
    bad_promql = _board({"Unparsable": "sum(up"})
    with pytest.raises(
        LoadFailed, match=r"Unparsable \(panel 0\) query A: HTTP 400: .*parse error"
    ):
        _with_grafana(db_url, prometheus, lambda g: load(bad_promql, window, SOURCES, g))
    table = {"type": "grafana-postgresql-datasource", "uid": "opsdeck-postgres"}
    raw = {
        "id": 7,
        "type": "table",
        "title": "Raw Customers",
        "gridPos": {"x": 0, "y": 0, "w": 24},
        "datasource": table,
        "targets": [
            {"refId": "A", "rawSql": "SELECT * FROM platform.customers", "datasource": table}
        ],
    }
    with pytest.raises(
        LoadFailed, match=r"Raw Customers \(panel 7\) query A: PostgreSQL: permission denied"
    ):
        _with_grafana(db_url, prometheus, lambda g: load({"panels": [raw]}, window, SOURCES, g))


def test_query_variables_read_real_label_values(prometheus: str, db_url: str) -> None:
    variable = {"type": "query", "name": "job", "query": "label_values(up, job)", "current": {}}
    board = _board({"Up": 'up{job="$job"} 0'}, [variable])
    board["panels"][0]["targets"][0]["expr"] = 'up{job="$job"}'
    window = Window.ending(time.time(), "1h")
    result = _with_grafana(db_url, prometheus, lambda g: load(board, window, SOURCES, g))
    (panel,) = result.panels
    assert panel.queries[0].query.text == 'up{job="prometheus"}'
