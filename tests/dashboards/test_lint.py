"""The re-implemented dashboard-linter rules: each catches what it is for."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from core.settings import Settings
from dashboards import catalog, command_center, lint

BOARD = catalog.dashboards(Settings())[command_center.UID]


def _tile(board: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in board["panels"] if p["type"] == "stat")


def _table(board: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in board["panels"] if p["title"] == "Audit Trail")


def _variable(board: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in board["templating"]["list"] if v["name"] == name)


def _set_expr(expr: str) -> Callable[[dict[str, Any]], None]:
    def change(board: dict[str, Any]) -> None:
        _tile(board)["targets"][0]["expr"] = expr

    return change


BREAKAGES: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "no description": ("panel-title-description", lambda b: _tile(b).pop("description")),
    "bad unit": (
        "panel-units",
        lambda b: _tile(b)["fieldConfig"]["defaults"].update(unit="furlongs"),
    ),
    "fixed datasource": (
        "panel-datasource",
        lambda b: _tile(b).update(datasource={"type": "prometheus", "uid": "abc"}),
    ),
    "editable": ("uneditable-dashboard", lambda b: b.update(editable=True)),
    "no datasource variable": (
        "template-datasource",
        lambda b: b["templating"].update(list=b["templating"]["list"][1:]),
    ),
    "random uid": ("fixed-uid", lambda b: b.update(uid="x1y2z3")),
    "fixed rate window": (
        "target-rate-interval",
        _set_expr("sum(rate(opsdeck_api_requests_total[5m]))"),
    ),
    "raw counter": ("target-counter-rate", _set_expr("sum(opsdeck_bookings_confirmed_total)")),
    "counter in avg_over_time": (
        "target-counter-rate",
        _set_expr("avg_over_time(opsdeck_bookings_confirmed_total[$__range])"),
    ),
    "broken promql": ("target-promql", _set_expr("sum(rate(x_total[$__rate_interval])")),
    "raw platform table": (
        "sql-masked-views",
        lambda b: _table(b)["targets"][0].update(rawSql="SELECT * FROM platform.customers"),
    ),
    "no targets": ("panel-no-targets", lambda b: _tile(b).update(targets=[])),
    "api_url a textbox": (
        "api-url-variable",
        lambda b: _variable(b, "api_url").update(type="textbox"),
    ),
}


def test_generated_dashboards_are_clean() -> None:
    for board in catalog.dashboards(Settings()).values():
        assert lint.lint(board) == []


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_rule_catches(breakage: str) -> None:
    rule, change = BREAKAGES[breakage]
    board = copy.deepcopy(BOARD)
    change(board)
    assert rule in {p.rule for p in lint.lint(board)}
