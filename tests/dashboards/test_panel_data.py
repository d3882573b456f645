"""Every Prometheus query of every generated dashboard returns data from the real stack:
the committed JSON's PromQL, with Grafana's macros and the dashboards' variables
substituted as Grafana would, run against a real Prometheus scraping the real exporter, API
and webhook worker over simulated history and live traffic (:mod:`tests.alerting.stack`).

The dashboard's time range is the last stretch of the test's Prometheus history, half of it
so that "compared with the previous period" queries (``offset $__range``) have a previous
period. Windows longer than that (24 h and 30 d recording rules, ``increase(...[1d])``)
return what the available history holds, which is what Prometheus does.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from api.http_metrics import HttpMetrics
from dashboards.catalog import BOARDS
from dashboards.lint import expand, panels
from tests.alerting.stack import SCRAPE_SECONDS, Stack, monitoring_stack
from tests.conftest import REPO

# Its stack may wait for another test file's stack (tests.alerting.stack) first.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

MIN_RANGE_SECONDS = 30  # each period spans many scrapes and folds, even on a busy machine
MAX_DATA_POINTS = 1000  # Grafana's default for a panel about a screen wide
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
METRIC = re.compile(r"\b(?:opsdeck[_:][A-Za-z0-9_:]+|up)\b")


@dataclass(frozen=True)
class Target:
    board: str
    panel: str
    ref: str
    expr: str
    instant: bool
    interval: str | None  # the panel's minimum interval
    variables: tuple[tuple[str, str], ...]

    @property
    def id(self) -> str:
        return f"{self.board}/{self.panel}/{self.ref}"


def _variable_values(board: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Each variable's value as Grafana interpolates its current selection into PromQL."""
    values = []
    for variable in board.get("templating", {}).get("list", []):
        kind, name = variable["type"], variable["name"]
        if kind == "datasource":
            continue
        if kind == "constant":
            values.append((name, str(variable["query"])))
            continue
        current = variable.get("current", {}).get("value")
        options = [o.split(" : ")[-1].strip() for o in str(variable["query"]).split(",")]
        if current in ("$__all", ["$__all"]):
            value = variable.get("allValue") or "(" + "|".join(options) + ")"
        elif isinstance(current, list):
            value = "(" + "|".join(current) + ")"
        else:
            value = str(current)
        values.append((name, value))
    return tuple(values)


def _targets() -> list[Target]:
    found = []
    for board_def in BOARDS:
        board = json.loads((REPO / board_def.path).read_text(encoding="utf-8"))
        variables = _variable_values(board)
        for panel in panels(board):
            if (panel.get("datasource") or {}).get("type") != "prometheus":
                continue
            for target in panel.get("targets", []):
                found.append(
                    Target(
                        board["uid"],
                        panel["title"],
                        target["refId"],
                        target["expr"],
                        bool(target.get("instant")),
                        panel.get("interval"),
                        variables,
                    )
                )
    return found


TARGETS = _targets()


def _annotations() -> list[tuple[str, str, str]]:
    found = []
    for board_def in BOARDS:
        board = json.loads((REPO / board_def.path).read_text(encoding="utf-8"))
        for annotation in board.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                found.append((board["uid"], annotation["name"], annotation["expr"]))
    return found


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * UNITS[duration[-1]]


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range and the macros Grafana derives from it."""

    start: float
    end: float

    @property
    def seconds(self) -> int:
        return int(self.end - self.start)

    def interval(self, panel_min: str | None) -> int:
        floor = _seconds(panel_min) if panel_min else SCRAPE_SECONDS
        return max(floor, math.ceil(self.seconds / MAX_DATA_POINTS))

    def macros(self, panel_min: str | None) -> dict[str, str]:
        interval = self.interval(panel_min)
        # Grafana: $__rate_interval = max($__interval + scrape interval, 4 * scrape interval)
        rate_interval = max(interval + SCRAPE_SECONDS, 4 * SCRAPE_SECONDS)
        return {
            "$__rate_interval": f"{rate_interval}s",
            "$__interval_ms": str(interval * 1000),
            "$__interval": f"{interval}s",
            "$__range_ms": str(self.seconds * 1000),
            "$__range_s": str(self.seconds),
            "$__range": f"{self.seconds}s",
            "$__from": str(int(self.start * 1000)),
            "$__to": str(int(self.end * 1000)),
        }


@pytest.fixture(scope="module")
def stack(
    admin_url: str,
    history_template: str,
    services: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The exporter, the API and the webhook worker, scraped by a real Prometheus."""
    work = tmp_path_factory.mktemp("panels")
    redis = services["redis"]
    with monitoring_stack(admin_url, history_template, work, redis_url=redis, gateway=True) as s:
        yield s


@pytest.fixture(scope="module")
def time_range(stack: Stack) -> TimeRange:
    # Enough history for a range and the period before it, each with several scrapes.
    wait = stack.started + 2 * MIN_RANGE_SECONDS + 4 - time.time()
    if wait > 0:
        time.sleep(wait)
    end = time.time()
    return TimeRange(end - (end - stack.started - 2) // 2, end)


def _finite(result: list[dict[str, Any]]) -> bool:
    samples = [s for series in result for s in series.get("values", [series.get("value")])]
    return any(s is not None and math.isfinite(float(s[1])) for s in samples)


def _run(stack: Stack, target: Target, window: TimeRange) -> list[dict[str, Any]]:
    expr = expand(target.expr, window.macros(target.interval), dict(target.variables))
    assert "$" not in expr, f"unexpanded macro or variable in {expr}"
    if target.instant:
        return stack.query(expr, at=window.end)
    # Grafana steps by $__interval; a one-day step over minutes of history would put the
    # only point before the first sample, so the step is at most the range.
    step = min(window.interval(target.interval), window.seconds)
    return stack.query_range(expr, window.start, window.end, step)


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
def test_panel_query_returns_data(stack: Stack, time_range: TimeRange, target: Target) -> None:
    result = _run(stack, target, time_range)
    assert result, f"{target.id}: no series for {target.expr}"
    assert _finite(result), f"{target.id}: only NaN/Inf for {target.expr}: {result[:3]}"


@pytest.mark.parametrize("annotation", _annotations(), ids=lambda a: f"{a[0]}/{a[1]}")
def test_annotation_query_runs(stack: Stack, time_range: TimeRange, annotation: Any) -> None:
    """Annotations mark anomalies, so an empty result is normal; the query must run."""
    _board, _name, expr = annotation
    expanded = expand(expr, time_range.macros(None), {})
    stack.query_range(expanded, time_range.start, time_range.end, SCRAPE_SECONDS)


def test_the_api_exports_what_the_dashboards_query() -> None:
    metrics = HttpMetrics()
    metrics.observe("/healthz", "GET", 200, 0.01)
    exposed = {
        line.split("{")[0].split(" ")[0]
        for line in metrics.render().decode().splitlines()
        if line and not line.startswith("#")
    }
    queried = {
        name
        for target in TARGETS
        for name in METRIC.findall(target.expr)
        if name.startswith("opsdeck_api_http_")
    }
    assert queried, "no panel queries the API's own metrics"
    assert queried <= exposed, sorted(queried - exposed)
