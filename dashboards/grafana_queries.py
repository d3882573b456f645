"""What Grafana sends when it loads a dashboard: every drawn panel's queries, expanded.

A panel is drawn unless it sits inside a collapsed row (row panels themselves query
nothing); panels load in layout order, top to bottom, left to right, after the
dashboard's enabled annotations. Each Prometheus target becomes an instant query when
``instant`` is set, a range query when ``range`` is set or neither is (older dashboards),
and both when both are, with the interval, step and macros of :mod:`dashboards.grafana_time`
and the variables of :mod:`dashboards.grafana_variables`. Each PostgreSQL target becomes
its SQL with the variables, then the PostgreSQL datasource's macros, over the unaligned
time range: ``$__timeFilter(col)``, ``$__timeFrom()``, ``$__timeTo()``,
``$__timeGroup(col, interval)``, ``$__timeGroupAlias(col, interval)``, ``$__interval``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from dashboards.grafana_time import (
    POSTGRES,
    PROMETHEUS,
    SCREEN_WIDTH,
    Datasource,
    Timing,
    Window,
    browser_interval_ms,
    duration_ms,
    max_data_points,
    short_interval,
)
from dashboards.grafana_variables import Selection, promql_values, sql_values, substitute

Kind = Literal["range", "instant", "sql"]
SQL_MACRO = re.compile(r"\$(__\w+)\(([^)]*)\)")


@dataclass(frozen=True)
class Query:
    """One request of a panel's target: PromQL (``range``/``instant``) or SQL."""

    ref: str
    kind: Kind
    text: str
    start: float = 0.0  # unix seconds; an instant query's time is ``end``
    end: float = 0.0
    step: float = 0.0  # seconds, range queries only

    @property
    def path(self) -> str:
        return "/api/v1/query_range" if self.kind == "range" else "/api/v1/query"

    def params(self) -> dict[str, str]:
        """The Prometheus API's form fields for this query."""
        if self.kind == "range":
            times = {"start": _num(self.start), "end": _num(self.end), "step": _num(self.step)}
            return {"query": self.text, **times}
        return {"query": self.text, "time": _num(self.end)}


@dataclass(frozen=True)
class PanelQueries:
    """A panel (or annotation) and the queries Grafana runs for it in one request."""

    name: str
    queries: tuple[Query, ...]


def _num(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def align(moment: float, step: float) -> float:
    """A range query's start or end, rounded down to a multiple of the step (UTC)."""
    return math.floor(moment / step) * step


def visible_panels(board: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The panels Grafana draws, in layout order; collapsed rows keep theirs hidden."""
    drawn = [p for p in board.get("panels", []) if p.get("type") != "row"]
    return sorted(drawn, key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))


def target_kinds(target: Mapping[str, Any]) -> tuple[Kind, ...]:
    """How the Prometheus backend runs a target: instant, range, or both."""
    instant, ranged = bool(target.get("instant")), bool(target.get("range"))
    kinds: list[Kind] = ["instant"] if instant else []
    if ranged or not instant:
        kinds.append("range")
    return tuple(kinds)


def rfc3339(moment: float) -> str:
    """Go's RFC3339Nano in UTC, as the PostgreSQL macros write times."""
    text = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0")
    return text.rstrip(".") + "Z"


def expand_sql(
    sql: str, window: Window, variables: Mapping[str, str], interval_ms: int | None = None
) -> str:
    """A PostgreSQL target's SQL: variables first (the browser), then macros (the backend).
    ``interval_ms`` is the panel's ``$__interval``; by default a full-width panel's."""
    if interval_ms is None:
        interval_ms = browser_interval_ms(window, SCREEN_WIDTH, None)
    sql = substitute(sql, variables)

    def macro(match: re.Match[str]) -> str:
        name, args = match.group(1), [a.strip() for a in match.group(2).split(",")]
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{rfc3339(window.start)}' AND '{rfc3339(window.end)}'"
        if name == "__timeFrom":
            return f"'{rfc3339(window.start)}'"
        if name == "__timeTo":
            return f"'{rfc3339(window.end)}'"
        if name in ("__timeGroup", "__timeGroupAlias"):
            size = _group_seconds(args[1].strip("'"), interval_ms)
            group = f"floor(extract(epoch from {args[0]})/{size})*{size}"
            return group + (' AS "time"' if name == "__timeGroupAlias" else "")
        raise ValueError(f"unsupported PostgreSQL macro ${name}")

    sql = SQL_MACRO.sub(macro, sql)
    return substitute(
        sql, {"__interval_ms": str(interval_ms), "__interval": short_interval(interval_ms)}
    )


def _group_seconds(interval: str, interval_ms: int) -> str:
    ms = interval_ms if interval in ("$__interval", "${__interval}") else duration_ms(interval)
    return _num(ms / 1000)


def _source(
    ref: Mapping[str, Any] | None, picked: Mapping[str, str], sources: Mapping[str, Datasource]
) -> Datasource:
    uid = substitute(str((ref or {}).get("uid", "")), picked)
    if uid not in sources:
        raise ValueError(f"datasource {uid!r} is not provisioned")
    return sources[uid]


def _prometheus(
    target: Mapping[str, Any], timing: Timing, window: Window, values: Mapping[str, str]
) -> list[Query]:
    text = substitute(substitute(str(target["expr"]), values), timing.macros())
    step = timing.step_ms / 1000
    found = []
    for kind in target_kinds(target):
        if kind == "instant":
            found.append(Query(target["refId"], kind, text, window.end, window.end))
        else:
            start, end = align(window.start, step), align(window.end, step)
            found.append(Query(target["refId"], kind, text, start, end, step))
    return found


def panel_queries(
    panel: Mapping[str, Any],
    window: Window,
    selections: Sequence[Selection],
    sources: Mapping[str, Datasource],
    screen_width: int = SCREEN_WIDTH,
) -> PanelQueries:
    """Every query one panel's request carries, expanded as Grafana expands it."""
    picked = {s.name: s.values[0] for s in selections}
    points = max_data_points(panel, screen_width)
    queries: list[Query] = []
    for target in panel.get("targets", []):
        if target.get("hide"):
            continue
        ds = _source(target.get("datasource") or panel.get("datasource"), picked, sources)
        if ds.type == PROMETHEUS:
            timing = Timing.of(
                window,
                points,
                panel.get("interval"),
                ds.scrape,
                target.get("interval") or None,
                int(target.get("intervalFactor") or 1),
            )
            queries.extend(_prometheus(target, timing, window, promql_values(selections)))
        elif ds.type == POSTGRES:
            interval = browser_interval_ms(window, points, panel.get("interval") or ds.scrape)
            sql = expand_sql(str(target["rawSql"]), window, sql_values(selections), interval)
            queries.append(Query(target["refId"], "sql", sql))
        else:
            raise ValueError(f"panel {panel.get('title')!r}: datasource type {ds.type!r}")
    return PanelQueries(f"{panel.get('title')} (panel {panel.get('id')})", tuple(queries))


def annotation_queries(
    board: Mapping[str, Any],
    window: Window,
    selections: Sequence[Selection],
    sources: Mapping[str, Datasource],
    screen_width: int = SCREEN_WIDTH,
) -> list[PanelQueries]:
    """The enabled Prometheus annotations: range queries whose ``step`` is the min step."""
    picked = {s.name: s.values[0] for s in selections}
    found = []
    for annotation in board.get("annotations", {}).get("list", []):
        if not annotation.get("enable") or not annotation.get("expr"):
            continue
        ds = _source(annotation.get("datasource"), picked, sources)
        timing = Timing.of(window, screen_width, None, ds.scrape, annotation.get("step"))
        target = {"refId": "Anno", "expr": annotation["expr"], "range": True}
        queries = _prometheus(target, timing, window, promql_values(selections))
        found.append(PanelQueries(f"annotation {annotation.get('name')}", tuple(queries)))
    return found


def board_queries(
    board: Mapping[str, Any],
    window: Window,
    selections: Sequence[Selection],
    sources: Mapping[str, Datasource],
    screen_width: int = SCREEN_WIDTH,
) -> list[PanelQueries]:
    """A dashboard load's requests after its variables: annotations, then every drawn
    panel in layout order."""
    found = annotation_queries(board, window, selections, sources, screen_width)
    for panel in visible_panels(board):
        found.append(panel_queries(panel, window, selections, sources, screen_width))
    return found
