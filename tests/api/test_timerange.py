"""Grafana's time ranges, as data links carry them, resolve to the instants Grafana computes.

Expected instants are worked out by hand from Grafana's ``dateMath.parse`` (moment.js):
``+``/``-`` step left to right, ``y``/``Q``/``M`` keep the day of the month clamped to the
target month's last day, ``/unit`` rounds down for ``from`` and up to the unit's end for
``to`` (dashboards always parse ``to`` with roundUp), quarters start Jan/Apr/Jul/Oct, the
fiscal year starts in January (Grafana's default), weeks start on Monday (ISO 8601; what
Grafana uses for a viewer on Monday-start locale or preference), all in UTC. The unit's end
is its last microsecond where Grafana says ``.999`` ms (see ``api.timerange``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.problems import Problem
from api.timerange import parse_moment, parse_range

GENERATED_DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards" / "generated"


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def end(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 23, 59, 59, 999_999, tzinfo=UTC)


# A Wednesday in a leap year, with sub-second digits so rounding is visible.
NOW = datetime(2024, 5, 15, 13, 47, 21, 250_000, tzinfo=UTC)


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


# Every quick range of Grafana's time picker (rangeutil.ts), then the hidden "Next" ones it
# also recognises, and a chained expression, at NOW.
QUICK_RANGES = [
    ("Last 5 minutes", "now-5m", "now", ago(minutes=5), NOW),
    ("Last 15 minutes", "now-15m", "now", ago(minutes=15), NOW),
    ("Last 30 minutes", "now-30m", "now", ago(minutes=30), NOW),
    ("Last 1 hour", "now-1h", "now", ago(hours=1), NOW),
    ("Last 3 hours", "now-3h", "now", ago(hours=3), NOW),
    ("Last 6 hours", "now-6h", "now", ago(hours=6), NOW),
    ("Last 12 hours", "now-12h", "now", ago(hours=12), NOW),
    ("Last 24 hours", "now-24h", "now", ago(hours=24), NOW),
    ("Last 2 days", "now-2d", "now", ago(days=2), NOW),
    ("Last 7 days", "now-7d", "now", ago(days=7), NOW),
    ("Last 30 days", "now-30d", "now", NOW.replace(month=4), NOW),
    # 90 days back from 15 May 2024: 15 days to 30 Apr, 30 to 31 Mar, 31 to 29 Feb, 14 more.
    ("Last 90 days", "now-90d", "now", NOW.replace(month=2), NOW),
    ("Last 6 months", "now-6M", "now", NOW.replace(year=2023, month=11), NOW),
    ("Last 1 year", "now-1y", "now", NOW.replace(year=2023), NOW),
    ("Last 2 years", "now-2y", "now", NOW.replace(year=2022), NOW),
    ("Last 5 years", "now-5y", "now", NOW.replace(year=2019), NOW),
    ("Yesterday", "now-1d/d", "now-1d/d", at(2024, 5, 14), end(2024, 5, 14)),
    ("Day before yesterday", "now-2d/d", "now-2d/d", at(2024, 5, 13), end(2024, 5, 13)),
    ("This day last week", "now-7d/d", "now-7d/d", at(2024, 5, 8), end(2024, 5, 8)),
    # now-1w is Wednesday 8 May; its ISO week runs Monday 6 May to Sunday 12 May.
    ("Previous week", "now-1w/w", "now-1w/w", at(2024, 5, 6), end(2024, 5, 12)),
    ("Previous month", "now-1M/M", "now-1M/M", at(2024, 4, 1), end(2024, 4, 30)),
    # now-1Q is 15 February, in the first quarter.
    ("Previous quarter", "now-1Q/Q", "now-1Q/Q", at(2024, 1, 1), end(2024, 3, 31)),
    ("Previous fiscal quarter", "now-1Q/fQ", "now-1Q/fQ", at(2024, 1, 1), end(2024, 3, 31)),
    ("Previous year", "now-1y/y", "now-1y/y", at(2023, 1, 1), end(2023, 12, 31)),
    ("Previous fiscal year", "now-1y/fy", "now-1y/fy", at(2023, 1, 1), end(2023, 12, 31)),
    ("Today", "now/d", "now/d", at(2024, 5, 15), end(2024, 5, 15)),
    ("Today so far", "now/d", "now", at(2024, 5, 15), NOW),
    ("This week", "now/w", "now/w", at(2024, 5, 13), end(2024, 5, 19)),
    ("This week so far", "now/w", "now", at(2024, 5, 13), NOW),
    ("This month", "now/M", "now/M", at(2024, 5, 1), end(2024, 5, 31)),
    ("This month so far", "now/M", "now", at(2024, 5, 1), NOW),
    ("This quarter", "now/Q", "now/Q", at(2024, 4, 1), end(2024, 6, 30)),
    ("This quarter so far", "now/Q", "now", at(2024, 4, 1), NOW),
    ("This fiscal quarter", "now/fQ", "now/fQ", at(2024, 4, 1), end(2024, 6, 30)),
    ("This fiscal quarter so far", "now/fQ", "now", at(2024, 4, 1), NOW),
    ("This year", "now/y", "now/y", at(2024, 1, 1), end(2024, 12, 31)),
    ("This year so far", "now/y", "now", at(2024, 1, 1), NOW),
    ("This fiscal year", "now/fy", "now/fy", at(2024, 1, 1), end(2024, 12, 31)),
    ("This fiscal year so far", "now/fy", "now", at(2024, 1, 1), NOW),
    ("Next 5 minutes", "now", "now+5m", NOW, NOW + timedelta(minutes=5)),
    ("Next 7 days", "now", "now+7d", NOW, NOW + timedelta(days=7)),
    ("Next 6 months", "now", "now+6M", NOW, NOW.replace(month=11)),
    ("Next 2 years", "now", "now+2y", NOW, NOW.replace(year=2026)),
    # Start of yesterday plus 8 hours; as `to` the rounding goes up first (dashboards parse
    # `to` with roundUp), so it is the end of yesterday plus 8 hours.
    (
        "Yesterday 08:00 to today 08:00",
        "now-1d/d+8h",
        "now-1d/d+8h",
        at(2024, 5, 14, 8),
        end(2024, 5, 14) + timedelta(hours=8),
    ),
    ("Spaces inside the math are ignored", "now - 1d / d", "now", at(2024, 5, 14), NOW),
    ("Amount 1 may be left out", "now-d", "now/1d", ago(days=1), end(2024, 5, 15)),
]


@pytest.mark.parametrize(
    ("raw_from", "raw_to", "start", "stop"),
    [row[1:] for row in QUICK_RANGES],
    ids=[row[0] for row in QUICK_RANGES],
)
def test_grafana_quick_ranges(raw_from: str, raw_to: str, start: datetime, stop: datetime) -> None:
    window = parse_range(raw_from, raw_to, "now-24h", now=NOW)
    assert (window.start, window.end) == (start, stop)


# (now, expression, expected from-side instant). Moment keeps the day of the month and clamps
# it to the target month's length; each step starts from the previous step's result.
CALENDAR = [
    (at(2024, 1, 31, 10), "now-1M", at(2023, 12, 31, 10)),
    (at(2024, 3, 31, 10), "now-1M", at(2024, 2, 29, 10)),
    (at(2023, 3, 31, 10), "now-1M", at(2023, 2, 28, 10)),
    (at(2024, 1, 30, 10), "now+1M", at(2024, 2, 29, 10)),
    (at(2024, 3, 31, 10), "now-1M+1M", at(2024, 3, 29, 10)),
    (at(2024, 5, 31, 10), "now-1Q", at(2024, 2, 29, 10)),
    (at(2024, 8, 31, 10), "now+2Q", at(2025, 2, 28, 10)),
    (at(2024, 2, 29, 10), "now-1y", at(2023, 2, 28, 10)),
    (at(2024, 2, 29, 10), "now+1y", at(2025, 2, 28, 10)),
    (at(2024, 2, 29, 10), "now-4y", at(2020, 2, 29, 10)),
    (at(2024, 2, 29, 10), "now-12M", at(2023, 2, 28, 10)),
    (at(2024, 12, 31, 23, 59, 59), "now+1s", at(2025, 1, 1)),
    (at(2024, 1, 1), "now-1w/w", at(2023, 12, 25)),
    # A Sunday still belongs to the week that began the Monday before.
    (at(2024, 5, 19, 22), "now/w", at(2024, 5, 13)),
    (at(2024, 5, 20), "now/w", at(2024, 5, 20)),
    (at(2024, 11, 30, 12), "now/Q", at(2024, 10, 1)),
    (at(2024, 5, 15, 13, 47, 21), "now/h", at(2024, 5, 15, 13)),
    (at(2024, 5, 15, 13, 47, 21), "now/m", at(2024, 5, 15, 13, 47)),
    (NOW, "now/s", at(2024, 5, 15, 13, 47, 21)),
]


@pytest.mark.parametrize(
    ("now", "expression", "expected"),
    CALENDAR,
    ids=[f"{now:%Y-%m-%dT%H:%M:%S} {expression}" for now, expression, _ in CALENDAR],
)
def test_calendar_arithmetic_follows_moment(
    now: datetime, expression: str, expected: datetime
) -> None:
    assert parse_moment("from", expression, now, round_up=False) == expected


@pytest.mark.parametrize(
    ("now", "expression", "expected"),
    [
        (at(2024, 2, 10), "now/M", end(2024, 2, 29)),
        (at(2023, 2, 10), "now/M", end(2023, 2, 28)),
        (at(2024, 1, 31), "now/M-1M", end(2023, 12, 31)),
        (at(2024, 1, 31), "now/M+1M", end(2024, 2, 29)),
        (at(2024, 5, 19, 22), "now/w", end(2024, 5, 19)),
        (at(2024, 11, 30), "now/Q", end(2024, 12, 31)),
        (at(2024, 5, 15, 13, 47, 21), "now/h", datetime(2024, 5, 15, 13, 59, 59, 999_999, UTC)),
    ],
)
def test_rounding_up_reaches_the_units_last_instant(
    now: datetime, expression: str, expected: datetime
) -> None:
    assert parse_moment("to", expression, now, round_up=True) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1715781600000", at(2024, 5, 15, 14)),
        ("1715781600123", datetime(2024, 5, 15, 14, 0, 0, 123_000, UTC)),
        ("0", at(1970, 1, 1)),
        ("2024-05-15T14:00:00.000Z", at(2024, 5, 15, 14)),
        ("2024-05-15T16:00:00+02:00", at(2024, 5, 15, 14)),
        ("2024-05-15 14:00:00", at(2024, 5, 15, 14)),
        ("2024-05-15", at(2024, 5, 15)),
    ],
)
def test_absolute_times_grafana_writes(value: str, expected: datetime) -> None:
    assert parse_moment("from", value, NOW, round_up=False) == expected
    assert parse_moment("to", value, NOW, round_up=True) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("now-1x", "unknown unit 'x'"),
        ("now-1", "'-1' needs a unit"),
        ("now+", "'+' needs a unit"),
        ("now/2d", "rounding takes a single unit"),
        ("now/fM", "fiscal rounding is /fy or /fQ"),
        ("now-1fy", "'f' (fiscal) only applies to rounding"),
        ("now-1d5", "expected +N<unit>, -N<unit> or /<unit> at '5'"),
        ("nowish", "expected +N<unit>, -N<unit> or /<unit> at 'ish'"),
        ("now-1d/d 8h", "write it as %2B"),
        ("now-1234567890d", "longer than 9 digits"),
        ("now-999999999y", "leaves the supported range"),
        ("now+999999999w", "leaves the supported range"),
        ("NOW-1d", "not a time"),
        ("yesterday", "neither epoch ms, ISO 8601 nor now-based date math"),
        ("-1000", "not a time"),
        ("99999999999999999", "beyond 9999-12-31"),
        pytest.param("1" * 5000, "beyond 9999-12-31", id="5000 digits"),
        ("9999-12-31T23:00:00-05:00", "out of the supported range"),
        ("2024-13-01", "not a time"),
    ],
)
def test_anything_else_is_refused_naming_what_is_wrong(value: str, reason: str) -> None:
    with pytest.raises(Problem) as refused:
        parse_range(value, "now", "now-24h", now=NOW)
    assert refused.value.status == 400
    assert refused.value.invalid_params[0][0] == "from"
    assert reason in refused.value.detail


def test_refusals_name_the_side_at_fault() -> None:
    with pytest.raises(Problem) as refused:
        parse_range("now-1d", "now/q", "now-24h", now=NOW)
    assert refused.value.invalid_params[0][0] == "to"
    assert "unknown unit 'q'" in refused.value.detail


def test_an_empty_or_inverted_range_is_refused() -> None:
    with pytest.raises(Problem) as refused:
        parse_range("now/d", "now-1d/d", "now-24h", now=NOW)
    assert refused.value.detail == "from: must be earlier than to"


def test_missing_ends_take_the_callers_defaults() -> None:
    window = parse_range(None, "", "now-7d/d", now=NOW)
    assert (window.start, window.end) == (at(2024, 5, 8), NOW)
    assert (window.start_ms, window.end_ms) == (1715126400000, 1715780841250)


def test_dashboards_keep_grafanas_default_fiscal_year() -> None:
    # /fy and /fQ are read with a January fiscal year; a dashboard moving it would need it too.
    boards = sorted(GENERATED_DASHBOARDS.glob("*.json"))
    assert boards
    for board in boards:
        assert json.loads(board.read_text()).get("fiscalYearStartMonth", 0) == 0, board.name
