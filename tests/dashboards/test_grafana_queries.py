"""Grafana's query rules, held against Grafana's own examples (the Prometheus backend's
``calculatePrometheusInterval`` and ``calculateRateInterval`` cases, the browser's
``roundInterval`` table) and against every committed dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dashboards.catalog import BOARDS
from dashboards.grafana_queries import (
    board_queries,
    expand_sql,
    panel_queries,
    target_kinds,
    visible_panels,
)
from dashboards.grafana_time import (
    Timing,
    Window,
    browser_interval_ms,
    datasources,
    duration_ms,
    go_duration,
    max_data_points,
    rate_interval_ms,
    round_interval,
    short_interval,
    step_ms,
)
from dashboards.grafana_variables import (
    Selection,
    promql_value,
    select,
    sql_value,
    static_selection,
    substitute,
    variable_options,
    variable_request,
)
from tests.conftest import REPO

END = 1_764_000_000.0  # 2025-11-24T16:00:00Z, a whole hour
HOUR, DAY = 3_600_000, 86_400_000
SOURCES = datasources()
LOADED = {b.uid: json.loads((REPO / b.path).read_text(encoding="utf-8")) for b in BOARDS}
INSTANT_PANELS = {"stat", "gauge", "table", "piechart", "bargauge"}
RANGE_PANELS = {"timeseries", "heatmap"}


def _window(ms: int) -> Window:
    return Window(END - ms / 1000, END)


@pytest.mark.parametrize(
    ("ms", "browser", "backend"),
    [
        (54_000, 60_000, 60_000),  # 24 h over 1,600 px
        (108_000, 120_000, 120_000),  # 24 h over 800 px
        (90_000, 120_000, 60_000),  # a boundary: the browser excludes it, the backend not
        (1_728_000, 1_800_000, 1_800_000),
        (5, 1, 1),
        (10**12, 31_536_000_000, 31_536_000_000),
    ],
)
def test_round_interval(ms: int, browser: int, backend: int) -> None:
    assert round_interval(ms) == browser
    assert round_interval(ms, backend=True) == backend


@pytest.mark.parametrize(
    # calculatePrometheusInterval's cases: range, max data points, the minimum interval
    # (the query's min step, else the browser's intervalMs, else the datasource's), factor.
    ("range_ms", "points", "minimum", "factor", "step"),
    [
        (48 * HOUR, 761, 600_000, 1, 600_000),  # min step 10m over the calculated 5m
        (48 * HOUR, 761, 120_000, 1, 300_000),  # calculated 5m over min step 2m
        (48 * HOUR, 175, 120_000, 1, 900_000),
        (12 * HOUR, 0, 15_000, 1, 30_000),  # no max data points: 1,500
        (HOUR, 0, 15_000, 1, 15_000),
        (48 * HOUR, 0, 15_000, 10, 1_200_000),  # intervalFactor 10
        (48 * HOUR, 0, 240_000, 1, 240_000),  # a 240 s scrape interval
        (30 * DAY, 0, 15_000, 1, 1_800_000),
        (HOUR, 10, 15_000, 1, 300_000),
        (HOUR, 10_000, 15_000, 1, 15_000),
    ],
)
def test_step_matches_the_prometheus_backend(
    range_ms: int, points: int, minimum: int, factor: int, step: int
) -> None:
    assert step_ms(_window(range_ms), points, minimum, factor) == step


def test_the_safe_resolution_caps_the_points() -> None:
    # 30 d over 1,000,000 points would be 2.6 s; 11,000 points at most makes it 5 m.
    assert step_ms(_window(30 * DAY), 1_000_000, 1, 1) == 300_000


@pytest.mark.parametrize(
    ("interval", "scrape", "rate"),
    [(100_000, "30s", 130_000), (60_000, "30s", 120_000), (60_000, "15s", 75_000)],
)
def test_rate_interval(interval: int, scrape: str, rate: int) -> None:
    assert rate_interval_ms(interval, scrape) == rate


def test_a_24h_range_on_a_full_width_panel() -> None:
    """1,600 px wide: 86,400 s / 1,600 = 54 s, rounded to 1m; rate interval 1m15s."""
    timing = Timing.of(_window(DAY), 1600, None, "15s")
    assert (timing.interval_ms, timing.step_ms) == (60_000, 60_000)
    macros = timing.macros()
    assert macros["__interval"] == "1m"
    assert macros["__rate_interval"] == "1m15s"
    assert macros["__range"] == "86400s"
    assert macros["__range_s"] == "86400"


def test_a_panel_min_interval_raises_the_interval() -> None:
    timing = Timing.of(_window(7 * DAY), 800, "1d", "15s")
    assert timing.step_ms == DAY
    assert timing.macros()["__interval"] == "1d"
    assert timing.macros()["__rate_interval"] == "24h0m15s"


def test_the_browser_interval_is_never_below_the_scrape_interval() -> None:
    assert browser_interval_ms(_window(HOUR), 1600, "15s") == 15_000


@pytest.mark.parametrize(
    ("ms", "short", "go"),
    [
        (15_000, "15s", "15s"),
        (75_000, "1m", "1m15s"),
        (DAY + 15_000, "1d", "24h0m15s"),
        (500, "500ms", "500ms"),
        (1_500, "1s", "1.5s"),
    ],
)
def test_duration_forms(ms: int, short: str, go: str) -> None:
    assert (short_interval(ms), go_duration(ms)) == (short, go)


def test_grafana_durations() -> None:
    assert [duration_ms(d) for d in ("15s", "1d", "2w", "500ms", "30")] == [
        15_000,
        DAY,
        14 * DAY,
        500,
        30_000,
    ]
    with pytest.raises(ValueError, match="not a Grafana interval"):
        duration_ms("soon")


def test_max_data_points_is_the_panel_width_on_the_screen() -> None:
    assert max_data_points({"gridPos": {"w": 12}}) == 800
    assert max_data_points({"gridPos": {"w": 24}}, 1920) == 1920
    assert max_data_points({"gridPos": {"w": 6}, "maxDataPoints": 100}) == 100


def test_range_queries_align_to_the_step() -> None:
    (query,) = panel_queries(
        {
            "id": 1,
            "title": "t",
            "gridPos": {"w": 24},
            "datasource": {"uid": "opsdeck-prometheus"},
            "targets": [{"refId": "A", "expr": "up", "range": True}],
        },
        Window(END - 86_400 + 17, END + 17),
        [],
        SOURCES,
    ).queries
    assert (query.start, query.end, query.step) == (END - 86_400, END, 60)
    assert query.params() == {
        "query": "up",
        "start": str(int(END - 86_400)),
        "end": str(int(END)),
        "step": "60",
    }


@pytest.mark.parametrize(
    ("target", "kinds"),
    [
        ({"instant": True, "range": False}, ("instant",)),
        ({"instant": False, "range": True}, ("range",)),
        ({}, ("range",)),  # older dashboards set neither
        ({"instant": True, "range": True}, ("instant", "range")),
    ],
)
def test_target_kinds(target: dict[str, Any], kinds: tuple[str, ...]) -> None:
    assert target_kinds(target) == kinds


def _panels() -> list[tuple[str, dict[str, Any]]]:
    return [(uid, p) for uid, board in LOADED.items() for p in visible_panels(board)]


@pytest.mark.parametrize(
    ("uid", "panel"), _panels(), ids=lambda x: x if isinstance(x, str) else x["title"]
)
def test_every_committed_panel_runs_instant_or_range_as_its_type_shows(
    uid: str, panel: dict[str, Any]
) -> None:
    board = LOADED[uid]
    selections = [static_selection(v, SOURCES) for v in board["templating"]["list"]]
    queries = panel_queries(panel, _window(DAY), selections, SOURCES).queries
    assert queries, panel["title"]
    kinds = {q.kind for q in queries}
    if panel["datasource"]["type"] != "prometheus":
        assert kinds == {"sql"}
    elif panel["type"] in INSTANT_PANELS:
        assert kinds == {"instant"}, panel["title"]
    else:
        assert panel["type"] in RANGE_PANELS
        assert kinds == {"range"}, panel["title"]


@pytest.mark.parametrize("length", ["24h", "7d", "30d"])
@pytest.mark.parametrize("uid", sorted(LOADED))
def test_every_macro_and_variable_is_expanded(uid: str, length: str) -> None:
    board = LOADED[uid]
    selections = [static_selection(v, SOURCES) for v in board["templating"]["list"]]
    found = board_queries(board, Window.ending(END, length), selections, SOURCES)
    assert len(found) >= len(visible_panels(board))
    for panel in found:
        for query in panel.queries:
            assert "$" not in query.text, f"{panel.name}: {query.text}"


def test_collapsed_rows_hide_their_panels() -> None:
    board = {
        "panels": [
            {"type": "stat", "gridPos": {"x": 0, "y": 2}, "title": "second"},
            {"type": "row", "gridPos": {"x": 0, "y": 0}, "collapsed": False, "panels": []},
            {"type": "stat", "gridPos": {"x": 0, "y": 1}, "title": "first"},
            {
                "type": "row",
                "gridPos": {"x": 0, "y": 3},
                "collapsed": True,
                "panels": [{"type": "stat", "gridPos": {"x": 0, "y": 4}, "title": "hidden"}],
            },
        ]
    }
    assert [p["title"] for p in visible_panels(board)] == ["first", "second"]


def test_sql_macros_as_the_postgres_datasource_writes_them() -> None:
    window = Window(END - 3600.5, END)
    sql = "SELECT $__timeGroupAlias(at, '5m'), x FROM v WHERE $__timeFilter(at) AND a = '$who' AND b > $__timeFrom() AND c < $__timeTo() AND $__interval_ms > 0"
    assert expand_sql(sql, window, {"who": "ada"}, 60_000) == (
        'SELECT floor(extract(epoch from at)/300)*300 AS "time", x FROM v WHERE '
        "at BETWEEN '2025-11-24T14:59:59.5Z' AND '2025-11-24T16:00:00Z' AND a = 'ada' "
        "AND b > '2025-11-24T14:59:59.5Z' AND c < '2025-11-24T16:00:00Z' AND 60000 > 0"
    )


CUSTOM = {
    "type": "custom",
    "name": "sev",
    "query": "critical : a.b,info : c",
    "multi": True,
    "includeAll": True,
    "current": {"value": ["a.b", "c"]},
}


def test_variable_formatting_per_datasource() -> None:
    both = select(CUSTOM, ["a.b", "c"])
    assert promql_value(both) == "(a\\\\.b|c)"
    assert sql_value(both) == "'a.b','c'"
    everything = Selection({**CUSTOM, "allValue": ".+"}, ("a.b", "c"), all=True)
    assert promql_value(everything) == ".+"
    single = static_selection(
        {"type": "custom", "name": "m", "query": "true,false", "current": {"value": "false"}},
        SOURCES,
    )
    assert (promql_value(single), sql_value(single)) == ("false", "false")


def test_a_saved_value_that_is_gone_falls_back_to_the_first_option() -> None:
    variable = {"type": "custom", "name": "c", "query": "EUR,USD", "current": {"value": "GBP"}}
    assert static_selection(variable, SOURCES).values == ("EUR",)


def test_datasource_variables_resolve_to_the_provisioned_uid() -> None:
    variable = {
        "type": "datasource",
        "name": "ds",
        "query": "grafana-postgresql-datasource",
        "current": {},
    }
    assert static_selection(variable, SOURCES).values == ("opsdeck-postgres",)


def test_query_variables_ask_the_prometheus_api_over_the_range() -> None:
    window = Window(END - 86_400, END)
    job = {
        "type": "query",
        "name": "job",
        "query": {"query": "label_values(up, job)"},
        "regex": "/opsdeck-(.*)/",
    }
    request = variable_request(job, window, [])
    assert request.path == "/api/v1/label/job/values"
    assert dict(request.params) == {
        "match[]": "up",
        "start": str(int(END - 86_400)),
        "end": str(int(END)),
    }
    assert variable_options(job, ["opsdeck-api", "prometheus", "opsdeck-exporter"]) == [
        "api",
        "exporter",
    ]
    chained = {"type": "query", "name": "route", "query": 'label_values(x{job="$job"}, route)'}
    picked = select(job, ["api", "exporter"])
    assert dict(variable_request(chained, window, [picked]).params)["match[]"] == 'x{job="api"}'
    result = {
        "result": [{"metric": {"__name__": "up", "job": "p"}, "value": [1_700_000_000.5, "1"]}]
    }
    assert variable_options({"regex": ""}, result) == ['up{job="p"} 1 1700000000500']
    with pytest.raises(ValueError, match="unsupported query"):
        variable_request({"type": "query", "name": "m", "query": "metrics(.*)"}, window, [])


def test_substitute_replaces_both_forms_longest_name_first() -> None:
    expr = 'sum(increase(x_total{a="$livemode",b="${currency}"}[$__range] offset $__range_s))'
    values = {"__range": "5m", "__range_s": "300", "livemode": "true", "currency": "USD"}
    assert substitute(expr, values) == 'sum(increase(x_total{a="true",b="USD"}[5m] offset 300))'
