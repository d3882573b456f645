"""Dashboard lint: grafana/dashboard-linter's rules, re-implemented, plus opsdeck's own.

Each rule looks at the dashboard JSON (what Grafana will see) and returns problems as
``Problem(rule, where, message)``. PromQL is parsed by a real PromQL parser after the
Grafana macros are expanded to sentinel durations, so a rule can still tell which window
a ``rate()`` used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import promql_parser
from grafana_foundation_sdk.models import units as sdk_units

from dashboards.grafana_variables import substitute
from dashboards.links import API_URL_VARIABLE

PROMETHEUS_DS = "${datasource}"
POSTGRES_DS = "${postgres}"
UNIT_PANELS = frozenset({"stat", "timeseries", "table", "gauge", "heatmap", "bargauge", "piechart"})
VALID_UNITS = frozenset(
    value
    for name, value in vars(sdk_units).items()
    if not name.startswith("_") and isinstance(value, str)
)
CUSTOM_UNIT = re.compile(r"^(prefix|suffix|si|count|time|currency):.+")
COUNTER_SUFFIXES = ("_total", "_bucket", "_sum", "_count")
COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "resets"})
MASKED_VIEW = re.compile(r"^ops\.grafana_[a-z_]+$")
UID = re.compile(r"^opsdeck-[a-z0-9-]{1,32}$")

# Grafana macros → durations no human would write, so the AST shows which macro a window is.
RATE_INTERVAL = timedelta(seconds=4321)
INTERVAL = timedelta(seconds=4322)
RANGE = timedelta(seconds=4323)
SENTINELS = {"$__rate_interval": RATE_INTERVAL, "$__interval": INTERVAL, "$__range": RANGE}


@dataclass(frozen=True)
class Problem:
    rule: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: [{self.rule}] {self.message}"


def _sentinel_expr(expr: str) -> str:
    return substitute(expr, {k[1:]: f"{int(v.total_seconds())}s" for k, v in SENTINELS.items()})


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that is not a row, rows' children included."""
    for panel in board.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def _children(node: Any) -> list[Any]:
    children: list[Any] = []
    if isinstance(node, promql_parser.Call):
        children = list(node.args)
    elif isinstance(node, promql_parser.BinaryExpr):
        children = [node.lhs, node.rhs]
    elif isinstance(node, promql_parser.AggregateExpr):
        children = [node.expr]
        if isinstance(node.param, promql_parser.Expr):
            children.append(node.param)
    elif isinstance(
        node, (promql_parser.ParenExpr, promql_parser.UnaryExpr, promql_parser.SubqueryExpr)
    ):
        children = [node.expr]
    elif isinstance(node, promql_parser.MatrixSelector):
        children = [node.vector_selector]
    return children


def _is_counter(name: str | None) -> bool:
    return bool(name) and str(name).endswith(COUNTER_SUFFIXES)


def promql_problems(expr: str) -> list[str]:
    """Parse errors, windows that are not Grafana's macros, counters used without rate."""
    try:
        tree = promql_parser.parse(_sentinel_expr(expr))
    except (ValueError, RuntimeError) as exc:
        return [f"PromQL does not parse: {exc}"]
    problems: list[str] = []

    def visit(node: Any, counted: bool) -> None:
        if isinstance(node, promql_parser.VectorSelector) and _is_counter(node.name):
            if not counted:
                problems.append(f"counter {node.name} used outside rate()/increase()")
            return
        if isinstance(node, promql_parser.Call):
            name = node.func.name
            arg = node.args[0] if node.args else None
            if name in COUNTER_FUNCTIONS and isinstance(arg, promql_parser.MatrixSelector):
                allowed = {RATE_INTERVAL} if name in {"rate", "irate"} else set(SENTINELS.values())
                if arg.range not in allowed:
                    want = "$__rate_interval" if name != "increase" else "a Grafana macro"
                    problems.append(f"{name}() over a fixed window; use {want}")
                visit(arg.vector_selector, True)
                for other in node.args[1:]:
                    visit(other, False)
                return
        for child in _children(node):
            visit(child, False)

    visit(tree, False)
    return problems


def _rule_dashboard(board: dict[str, Any]) -> Iterator[Problem]:
    where = f"dashboard {board.get('uid')}"
    if not UID.match(str(board.get("uid", ""))):
        yield Problem("fixed-uid", where, "uid must be fixed and look like opsdeck-<name>")
    if board.get("editable") is not False:
        yield Problem("uneditable-dashboard", where, "editable must be false (change it in code)")
    variables = {v.get("name"): v for v in board.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        yield Problem("template-datasource", where, "needs a 'datasource' variable (prometheus)")
    elif ds.get("label") != "Data source":
        yield Problem("template-datasource", where, "datasource variable label: 'Data source'")
    api_url = variables.get(API_URL_VARIABLE)
    # A constant: a shared link's var-api_url= cannot point the data links elsewhere.
    if not api_url or api_url.get("type") != "constant":
        yield Problem("api-url-variable", where, f"needs the '{API_URL_VARIABLE}' constant")
    for annotation in board.get("annotations", {}).get("list", []):
        for message in promql_problems(str(annotation.get("expr", ""))):
            yield Problem("target-promql", f"{where} annotation {annotation.get('name')}", message)


def _rule_panel(panel: dict[str, Any]) -> Iterator[Problem]:
    where = f"panel {panel.get('id')} {panel.get('title')!r}"
    if not panel.get("title") or not panel.get("description"):
        yield Problem("panel-title-description", where, "needs a title and a description")
    if panel.get("type") in UNIT_PANELS:
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        units = [defaults.get("unit")] + [
            prop.get("value")
            for o in panel.get("fieldConfig", {}).get("overrides", [])
            for prop in o.get("properties", [])
            if prop.get("id") == "unit"
        ]
        for unit in units:
            if not unit or (unit not in VALID_UNITS and not CUSTOM_UNIT.match(str(unit))):
                yield Problem("panel-units", where, f"invalid or missing unit {unit!r}")
    targets = panel.get("targets") or []
    if not targets:
        yield Problem("panel-no-targets", where, "has no queries")
    uid = (panel.get("datasource") or {}).get("uid")
    if uid not in (PROMETHEUS_DS, POSTGRES_DS):
        yield Problem("panel-datasource", where, f"datasource {uid!r} is not templated")
    for target in targets:
        yield from _rule_target(where, uid, target)


def _rule_target(where: str, panel_uid: str | None, target: dict[str, Any]) -> Iterator[Problem]:
    where = f"{where} target {target.get('refId')}"
    if (target.get("datasource") or {}).get("uid") != panel_uid:
        yield Problem("panel-datasource", where, "target datasource differs from the panel's")
    if panel_uid == PROMETHEUS_DS:
        for message in promql_problems(str(target.get("expr", ""))):
            rule = "target-promql" if "parse" in message else "target-counter-rate"
            if "fixed window" in message:
                rule = "target-rate-interval"
            yield Problem(rule, where, message)
    elif panel_uid == POSTGRES_DS:
        sql = str(target.get("rawSql", ""))
        for name in re.findall(r"\b(?:FROM|JOIN)\s+([\w.]+)", sql, flags=re.IGNORECASE):
            if not MASKED_VIEW.match(name):
                yield Problem("sql-masked-views", where, f"reads {name}, not an ops.grafana_ view")


RULES: tuple[Callable[[dict[str, Any]], Iterator[Problem]], ...] = (_rule_dashboard,)


def lint(board: dict[str, Any]) -> list[Problem]:
    problems = [p for rule in RULES for p in rule(board)]
    for panel in panels(board):
        problems.extend(_rule_panel(panel))
    return problems
