"""Seed 001's wireframe, time picker and links, and seed 003/000's test/live separation."""

from __future__ import annotations

import re
from typing import Any

from core.settings import Settings
from dashboards import api_developers, catalog, command_center, lint, payments

BOARDS = catalog.dashboards(Settings())
CC = BOARDS[command_center.UID]
ROW1 = [
    "Active Bookings (24h)",
    "Booked Revenue (24h)",
    "Conversion %",
    "Booking Conflict Rate",
    "Payment Reconciliation Drift",
    "API 5xx Error Rate",
    "Uptime",
    "Open Support Tickets",
]


def _rows(board: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    rows: list[tuple[str, list[dict[str, Any]]]] = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            rows.append((panel["title"], []))
        else:
            rows[-1][1].append(panel)
    return rows


def _layout(panels: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return [(p["title"], p["gridPos"]["w"], p["gridPos"]["y"]) for p in panels]


def test_wireframe_rows() -> None:
    (_, row1), (_, row2), (_, row3) = _rows(CC)
    assert [p["title"] for p in row1] == ROW1
    assert {(p["type"], p["gridPos"]["w"], p["gridPos"]["y"]) for p in row1} == {("stat", 3, 1)}
    first_line = [(t, w) for t, w, y in _layout(row2) if y == row2[0]["gridPos"]["y"]]
    assert first_line == [
        ("Bookings Timeline", 12),
        ("Payment Events", 6),
        ("Webhook Queue Depth", 6),
    ]
    assert [t for t, _, _ in _layout(row2)][3:] == [
        "Calendar Sync Failures",
        "API p95 Latency by Endpoint",
        "Stuck Bookings",
        "Chargeback Rate",
        "Payment Failure Ratio",
        "PSP Success Ratio",
    ]
    assert [(p["type"], p["gridPos"]["w"]) for p in row2[3:]] == [
        ("timeseries", 12),
        ("heatmap", 12),
        ("stat", 3),
        ("stat", 3),
        ("timeseries", 9),
        ("timeseries", 9),
    ]
    assert [(t, w) for t, w, _ in _layout(row3)] == [
        ("Active Incidents", 12),
        ("Recent Double-bookings", 6),
        ("Recent Payment Mismatches", 6),
        ("Audit Trail", 24),
    ]
    assert all(p["datasource"]["uid"] == "${postgres}" for p in row3)


def test_time_picker_and_refresh() -> None:
    assert CC["time"] == {"from": "now-24h", "to": "now"}
    assert CC["refresh"] == "15s"
    quick = [q["from"] for q in CC["timepicker"]["quick_ranges"]]
    assert quick == ["now-1h", "now-6h", "now-24h", "now-7d", "now-30d"]


def test_tiles_are_coloured_by_the_seed_thresholds() -> None:
    t = Settings().thresholds
    steps = {
        p["title"]: [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]]
        for p in lint.panels(CC)
        if p["type"] == "stat"
    }
    assert steps["Booking Conflict Rate"] == [None, t.booking_conflict_rate]
    assert steps["API 5xx Error Rate"] == [None, t.api_5xx_rate]
    assert steps["Payment Reconciliation Drift"] == [
        None,
        t.reconciliation_drift,
        t.reconciliation_drift_suspend_payouts,
    ]
    tickets = next(p for p in lint.panels(CC) if p["title"] == "Open Support Tickets")
    ttr = tickets["fieldConfig"]["overrides"][0]["properties"][0]["value"]["steps"]
    assert [s["value"] for s in ttr] == [None, t.support_time_to_resolve_seconds / 3600]


def test_every_tile_and_table_links_to_a_drilldown_and_actions() -> None:
    for panel in lint.panels(CC):
        urls = [link["url"] for link in panel["fieldConfig"]["defaults"]["links"]]
        assert any(not u.startswith("${api_url}/actions/") for u in urls), panel["title"]
        assert all(u.startswith("${api_url}/") for u in urls)
        for url in urls:  # lists and actions carry a time range; a record's page has none
            record = re.fullmatch(r"\$\{api_url\}/[\w/-]+/\$\{__data\.fields\.\w+\}", url)
            assert record or ("from=" in url and "&to=" in url), url
        if panel["type"] in {"stat", "table"}:
            assert any(u.startswith("${api_url}/actions/") for u in urls), panel["title"]


def test_anomaly_markers_for_drops_and_spikes() -> None:
    exprs = {a["name"]: a["expr"] for a in CC["annotations"]["list"]}
    assert exprs["Booking drops"].endswith("< -3")
    assert exprs["Booking spikes"].endswith("> 3")


def test_test_and_live_are_never_mixed() -> None:
    for uid in (payments.UID, api_developers.UID):
        board = BOARDS[uid]
        livemode = next(v for v in board["templating"]["list"] if v["name"] == "livemode")
        assert livemode["multi"] is False
        assert livemode["includeAll"] is False
        for panel in lint.panels(board):
            for target in panel["targets"]:
                for selector in re.findall(
                    r"opsdeck_(?:payment|api_requests)\w*\{[^}]*\}", target["expr"]
                ):
                    assert 'livemode="$livemode"' in selector, (panel["title"], selector)
