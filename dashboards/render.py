"""The frame every opsdeck dashboard shares, and its deterministic JSON.

A dashboard is read-only in Grafana (``editable: false``: changes go through pull
requests), reads through templated datasources whose defaults are the provisioned uids,
and opens on the last 24 hours with the seed's quick ranges. The API's public URL is the
one value that depends on the deployment: the caller passes it (from settings, see
:mod:`dashboards.links`) into the ``api_url`` constant. Rendering numbers panels in order
and sorts keys, so the same code and settings always write the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dashboards.links import API_URL_VARIABLE
from dashboards.panels import POSTGRES_TYPE, POSTGRES_UID, PROMETHEUS_UID
from dashboards.sdk import JSONEncoder, dash, model

QUICK_RANGES = (("1h", "Last 1 hour"), ("6h", "Last 6 hours"), ("24h", "Last 24 hours"))
QUICK_RANGES_LONG = (("7d", "Last 7 days"), ("30d", "Last 30 days"))
REFRESH = "15s"
REFRESH_INTERVALS = ["15s", "30s", "1m", "5m", "15m"]
TAG = "opsdeck"


def _option(text: str, value: str) -> model.VariableOption:
    return model.VariableOption(selected=True, text=text, value=value)


def datasource_variables(*, postgres: bool, api_url: str) -> list[Any]:
    variables: list[Any] = [
        dash.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(_option("Prometheus", PROMETHEUS_UID))
    ]
    if postgres:
        variables.append(
            dash.DatasourceVariable("postgres")
            .label("PostgreSQL")
            .type(POSTGRES_TYPE)
            .current(_option("PostgreSQL (read-only)", POSTGRES_UID))
        )
    variables.append(
        dash.ConstantVariable(API_URL_VARIABLE)
        .label("opsdeck API")
        .description("Base URL of opsdeck's API, which every drilldown and action opens")
        .value(api_url)
    )
    return variables


def choice(name: str, label: str, values: Sequence[str], default: str) -> Any:
    """A single-choice variable (never "All": e.g. test and live data are never mixed)."""
    return (
        dash.CustomVariable(name)
        .label(label)
        .values(",".join(values))
        .current(_option(default, default))
        .multi(False)
        .include_all(False)
    )


def multi_choice(name: str, label: str, options: dict[str, str]) -> Any:
    """A multi-choice variable, all selected by default; ``options`` maps text to value."""
    return (
        dash.CustomVariable(name)
        .label(label)
        .values(",".join(f"{text} : {value}" for text, value in options.items()))
        .current(_option("All", "$__all"))
        .multi(True)
        .include_all(True)
        .all_value(".+")
    )


def frame(
    uid: str,
    title: str,
    description: str,
    *,
    api_url: str,
    postgres: bool = False,
    variables: Sequence[Any] = (),
) -> Any:
    quick: list[Any] = [
        dash.TimeOption().display(label).from_val(f"now-{span}").to("now")
        for span, label in (*QUICK_RANGES, *QUICK_RANGES_LONG)
    ]
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .readonly()
        .time("now-24h", "now")
        .timezone("browser")
        .refresh(REFRESH)
        .timepicker(dash.TimePicker().refresh_intervals(REFRESH_INTERVALS).quick_ranges(quick))
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .variables([*datasource_variables(postgres=postgres, api_url=api_url), *variables])
        .link(
            dash.DashboardLink("opsdeck dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
            .target_blank(False)
            .icon("external link")
            .tooltip("Other opsdeck dashboards")
        )
    )


def number_panels(panels: list[dict[str, Any]]) -> None:
    """Panel ids 1..n in layout order, rows and their children alike."""
    next_id = 1
    for panel in panels:
        panel["id"] = next_id
        next_id += 1
        for child in panel.get("panels", []):
            child["id"] = next_id
            next_id += 1


def to_dict(dashboard: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))
    number_panels(data.get("panels", []))
    return data


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
