"""Panel building blocks shared by every dashboard, on grafana-foundation-sdk builders.

Every panel reads through a templated datasource (``${datasource}`` for Prometheus,
``${postgres}`` for PostgreSQL) whose default is the fixed uid provisioning gives it, has
a title, a description and a unit, and links into the API (see :mod:`dashboards.links`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dashboards.links import Link
from dashboards.sdk import (
    PromQueryFormat,
    cb,
    cogbuilder,
    cogvariants,
    common,
    dash,
    heatmap,
    heatmap_model,
    model,
    piechart,
    piechart_model,
    prometheus,
    stat,
    table,
    timeseries,
)

PROMETHEUS_UID = "opsdeck-prometheus"
ALERTMANAGER_UID = "opsdeck-alertmanager"
POSTGRES_UID = "opsdeck-postgres"
POSTGRES_TYPE = "grafana-postgresql-datasource"
PROMETHEUS = common.DataSourceRef(type_val="prometheus", uid="${datasource}")
POSTGRES = common.DataSourceRef(type_val=POSTGRES_TYPE, uid="${postgres}")

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"

Panel = cogbuilder.Builder[model.Panel]


def query(
    expr: str, legend: str = "", ref: str = "A", *, instant: bool = False, table: bool = False
) -> Any:
    """A PromQL target: a range query, or the latest value (tiles), or a table of it."""
    target = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(PROMETHEUS)
    if legend:
        target = target.legend_format(legend)
    target = target.instant() if instant or table else target.range()
    if table:
        target = target.format(PromQueryFormat.TABLE)
    return target


class SqlQuery(cogvariants.Dataquery):
    """A PostgreSQL datasource target (the SDK has no builder for it)."""

    def __init__(self, sql: str, ref: str) -> None:
        self.sql = sql
        self.ref = ref

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": POSTGRES.to_json(),
            "editorMode": "code",
            "format": "table",
            "rawQuery": True,
            "rawSql": self.sql,
            "refId": self.ref,
        }


class SqlTarget(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, sql: str, ref: str = "A") -> None:
        self._query = SqlQuery(sql, ref)

    def build(self) -> cogvariants.Dataquery:
        return self._query


def steps(*pairs: tuple[float | None, str]) -> Any:
    """Absolute thresholds: (None, base colour), then (value, colour from that value on)."""
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in pairs])
    )


def above(limit: float, warn: float | None = None) -> Any:
    """Green below ``limit``, red from it on (orange from ``warn`` when given)."""
    if warn is None:
        return steps((None, GREEN), (limit, RED))
    return steps((None, GREEN), (warn, ORANGE), (limit, RED))


def data_links(links: Sequence[Link]) -> list[Any]:
    return [
        dash.DashboardLink(link.title)
        .type(model.DashboardLinkType.LINK)
        .url(link.url)
        .icon("external link")
        .tooltip(link.title)
        .tags([])
        .as_dropdown(False)
        .target_blank(True)
        .include_vars(False)
        .keep_time(False)
        for link in links
    ]


Override = tuple[model.MatcherConfig, list[model.DynamicConfigValue]]


def override(name: str, **props: dict[str, object]) -> Override:
    """Field properties for one field, e.g. ``override("Avg", thresholds={...})``.

    Grafana's dashboard schema types matcher options and property values as objects, so
    fields are matched with ``byNames`` and only object-valued properties (thresholds,
    line style, ...) are overridden; units stay one per panel.
    """
    matcher = model.MatcherConfig(
        id_val="byNames",
        options={"mode": "include", "names": [name], "prefix": "", "readOnly": True},
    )
    values = [model.DynamicConfigValue(id_val=key, value=value) for key, value in props.items()]
    return matcher, values


def _common(panel: Any, title: str, description: str, unit: str, links: Sequence[Link]) -> Any:
    return panel.title(title).description(description).unit(unit).data_links(data_links(links))


def tile(
    title: str,
    description: str,
    targets: Sequence[Any],
    *,
    unit: str,
    thresholds: Any,
    links: Sequence[Link],
    decimals: int | None = None,
    overrides: Sequence[Override] = (),
) -> Any:
    """A stat tile coloured by its thresholds."""
    panel = (
        _common(stat.Panel(), title, description, unit, links)
        .datasource(PROMETHEUS)
        .targets(list(targets))
        .thresholds(thresholds)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    for matcher, props in overrides:
        panel = panel.with_override(matcher, props)
    return panel


def chart(
    title: str,
    description: str,
    targets: Sequence[Any],
    *,
    unit: str,
    links: Sequence[Link],
    thresholds: Any = None,
    overrides: Sequence[Override] = (),
    bars: bool = False,
    interval: str | None = None,
) -> Any:
    """A time series chart."""
    panel = (
        _common(timeseries.Panel(), title, description, unit, links)
        .datasource(PROMETHEUS)
        .targets(list(targets))
        .line_width(1)
        .fill_opacity(10)
        .legend(
            cb.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
    if interval:
        panel = panel.interval(interval)
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)
        )
    for matcher, props in overrides:
        panel = panel.with_override(matcher, props)
    return panel


def _heatmap(title: str, description: str, target: Any, unit: str, links: Sequence[Link]) -> Any:
    return (
        _common(heatmap.Panel(), title, description, unit, links)
        .datasource(PROMETHEUS)
        .with_target(target)
        .calculate(False)
        .color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_model.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .scale(heatmap_model.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
            .fill("dark-orange")
            .reverse(False)
        )
    )


def series_heatmap(
    title: str, description: str, target: Any, *, unit: str, links: Sequence[Link]
) -> Any:
    """A heatmap whose rows are series (e.g. one per endpoint) and whose colour is the value."""
    return _heatmap(title, description, target, unit, links).cell_values(
        heatmap.CellValues().unit(unit)
    )


def heatmap_of_buckets(
    title: str, description: str, target: Any, *, unit: str, links: Sequence[Link]
) -> Any:
    """A heatmap of a Prometheus histogram: one row per bucket, colour is the count."""
    return (
        _heatmap(title, description, target.format(PromQueryFormat.HEATMAP), unit, links)
        .y_axis(heatmap.YAxisConfig().unit(unit))
        .cell_values(heatmap.CellValues().unit("short"))
    )


def pie(title: str, description: str, target: Any, *, unit: str, links: Sequence[Link]) -> Any:
    return (
        _common(piechart.Panel(), title, description, unit, links)
        .datasource(PROMETHEUS)
        .with_target(target)
        .pie_type(piechart_model.PieChartType.DONUT)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def prom_table(
    title: str,
    description: str,
    targets: Sequence[Any],
    *,
    unit: str,
    links: Sequence[Link],
    transformations: Sequence[model.DataTransformerConfig] = (),
    overrides: Sequence[Override] = (),
) -> Any:
    panel = (
        _common(table.Panel(), title, description, unit, links)
        .datasource(PROMETHEUS)
        .targets(list(targets))
        .transformations(list(transformations))
    )
    for matcher, props in overrides:
        panel = panel.with_override(matcher, props)
    return panel


def sql_table(title: str, description: str, sql: str, *, links: Sequence[Link]) -> Any:
    """A PostgreSQL table on one of the masked ``ops.grafana_*`` views."""
    return (
        _common(table.Panel(), title, description, "string", links)
        .datasource(POSTGRES)
        .with_target(SqlTarget(sql))
        .cell_height(common.TableCellHeight.SM)
    )


def transform(kind: str, **options: object) -> model.DataTransformerConfig:
    return model.DataTransformerConfig(id_val=kind, options=options)


def size(panel: Any, width: int, height: int) -> Any:
    """Grid size; positions follow from the order panels are added (24 columns a row)."""
    return panel.span(width).height(height)
