"""Showing values to people: money in its currency's ISO 4217 decimals, times in the
viewer's zone across daylight-saving changes, badges, card brands, the range control's
quick ranges (Grafana's own pairs) and wall times read in a zone, and how a count of
matches is said."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.display import labels, moments
from api.display.cells import cells
from api.display.money import format_money
from api.drilldowns.counts import Count
from api.drilldowns.range_control import QUICK_RANGES, relative_label
from api.drilldowns.spec import Field
from api.problems import Problem
from api.timerange import parse_range
from core import currencies
from tests.conftest import REPO

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("EUR", 2),
        ("USD", 2),
        ("NGN", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("CLF", 4),
        ("XAU", None),  # gold: no minor unit
        ("XYZ", None),  # not a currency
    ],
)
def test_exponents_are_iso_4217(code: str, exponent: int | None) -> None:
    assert currencies.exponent(code) == exponent


@pytest.mark.parametrize(
    ("minor", "code", "shown"),
    [
        (16928, "EUR", "€169.28"),
        (8775000, "NGN", "87,750.00 NGN"),
        (1500, "JPY", "¥1,500"),
        (1500, "KWD", "1.500 KWD"),
        (5, "EUR", "€0.05"),
        (-16928, "EUR", "-€169.28"),
        (-1500, "TND", "-1.500 TND"),
        (123456789, "USD", "$1,234,567.89"),
        (99, "GBP", "£0.99"),
        (0, "BHD", "0.000 BHD"),
        (16928, "eur", "€169.28"),
    ],
)
def test_money_in_its_currency(minor: int, code: str, shown: str) -> None:
    assert format_money(minor, code) == shown


@pytest.mark.parametrize("code", ["XYZ", "XAU", None])
def test_unknown_currency_shows_minor_units_never_a_guess(code: str | None) -> None:
    shown = format_money(16928, code)
    assert "16928" in shown
    assert "minor units" in shown
    assert "169.28" not in shown


def test_times_across_daylight_saving_keep_their_instant() -> None:
    # Europe/Berlin leaves summer time at 01:00 UTC on 2026-10-25: 03:00 CEST -> 02:00 CET.
    before = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    after = before + timedelta(hours=1)
    assert moments.format_moment(before, BERLIN) == "2026-10-25 02:30:00 +02:00"
    assert moments.format_moment(after, BERLIN) == "2026-10-25 02:30:00 +01:00"
    # New York enters summer time at 07:00 UTC on 2026-03-08.
    spring = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert moments.format_moment(spring - timedelta(seconds=1), NEW_YORK).endswith(
        "01:59:59 -05:00"
    )
    assert moments.format_moment(spring, NEW_YORK) == "2026-03-08 03:00:00 -04:00"
    assert moments.format_moment(spring, ZoneInfo("UTC")) == "2026-03-08 07:00:00 UTC"
    assert moments.format_moment(spring, ZoneInfo("Asia/Kolkata")).endswith("+05:30")


def test_zone_names_are_zoneinfos_own() -> None:
    assert moments.known("Europe/Berlin")
    assert not moments.known("Mars/Olympus_Mons")
    assert not moments.known("europe/berlin")
    assert str(moments.zone("Mars/Olympus_Mons")) == "UTC"


def test_wall_times_are_read_in_the_named_zone() -> None:
    """An absolute range from the datetime-local inputs, read in the viewer's zone; an
    offset written in the value wins; epoch ms and date math do not depend on it."""
    now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    window = parse_range(
        "2026-07-01T09:00:00", "2026-07-01T10:00:00", "now-1h", now=now, zone=BERLIN
    )
    assert window.start == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    winter = parse_range(
        "2026-12-01T09:00:00", "2026-12-01T10:00:00", "now-1h", now=now, zone=BERLIN
    )
    assert winter.start == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    explicit = parse_range("2026-07-01T09:00:00Z", "now", "now-1h", now=now, zone=BERLIN)
    assert explicit.start == datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    relative = parse_range("now-1h", "now", "now-1h", now=now, zone=BERLIN)
    assert (relative.start, relative.end) == (now - timedelta(hours=1), now)
    epoch = parse_range("1782903600000", "now", "now-1h", now=now, zone=BERLIN)
    assert epoch.start == datetime(2026, 7, 1, 11, 0, tzinfo=UTC)
    with pytest.raises(Problem):
        parse_range("2026-07-01T13:00:00", "2026-07-01T12:00:00", "now-1h", now=now, zone=BERLIN)


def test_quick_ranges_are_grafanas_pairs() -> None:
    pairs = {q.label: (q.start, q.end) for q in QUICK_RANGES}
    assert pairs["Last 5 minutes"] == ("now-5m", "now")
    assert pairs["Last 1 hour"] == ("now-1h", "now")
    assert pairs["Last 24 hours"] == ("now-24h", "now")
    assert pairs["Last 7 days"] == ("now-7d", "now")
    assert pairs["Today so far"] == ("now/d", "now")
    assert pairs["Today"] == ("now/d", "now/d")
    assert pairs["Yesterday"] == ("now-1d/d", "now-1d/d")
    assert pairs["Previous week"] == ("now-1w/w", "now-1w/w")
    now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    for quick in QUICK_RANGES:  # every pair is one the range parser takes
        window = parse_range(quick.start, quick.end, "now-1h", now=now)
        assert window.start < window.end <= now + timedelta(days=31), quick.label


def test_ranges_are_named_readably() -> None:
    assert relative_label("now-1h", "now") == "Last 1 hour"
    assert relative_label("now-2d", "now") == "Last 2 days"
    assert relative_label("now-45m", "now") == "Last 45 minutes"
    assert relative_label("now-1d/d", "now-1d/d") == "Yesterday"
    assert relative_label("1782907200000", "1782910800000") is None
    assert relative_label("now-1h", "now-5m") is None


def test_counts_say_exact_or_estimated() -> None:
    assert Count(1234, exact=True).of(50) == "50 of 1,234"
    assert Count(12300, exact=False, more_than=10000).of(50) == "50 of about 12,300"
    assert Count(900, exact=False, more_than=10000).of(50) == "50 of more than 10,000"
    assert Count(12300, exact=False).of(50) == "50 of about 12,300"


def test_cells_show_money_badges_brands_and_zoned_times() -> None:
    fields = (
        Field("amount_cents", "Amount", "integer", currency="currency"),
        Field("status", "Status", show="badge"),
        Field("card_brand", "Card brand", show="card_brand"),
        Field("created_at", "Created", "date-time"),
        Field("currency", "Currency"),
    )
    names = ["amount_cents", "status", "card_brand", "created_at", "currency"]
    row = [
        8775000,
        "partially_refunded",
        "amex",
        datetime(2026, 12, 5, 13, 3, 7, tzinfo=UTC),
        "NGN",
    ]
    shown = cells(fields, names, row, BERLIN)
    assert [c["text"] for c in shown] == [
        "87,750.00 NGN",
        "partially refunded",
        "American Express",
        "2026-12-05 14:03:07 +01:00",
        "NGN",
    ]
    assert shown[1]["badge"] == "badge badge-partially_refunded"
    assert shown[0]["badge"] is None
    assert labels.badge_class('x" onclick="y') == "badge badge-x-onclick-y"
    assert labels.card_brand("unheard_of") == "unheard_of"


def test_every_dashboard_quick_range_is_offered_with_grafanas_pair() -> None:
    """The dashboards' time pickers and the pages' range control speak the same ranges."""
    offered = {q.label: (q.start, q.end) for q in QUICK_RANGES}
    dashboards = sorted((REPO / "dashboards" / "generated").glob("*.json"))
    assert dashboards
    for path in dashboards:
        for quick in json.loads(path.read_text())["timepicker"]["quick_ranges"]:
            assert offered.get(quick["display"]) == (quick["from"], quick["to"]), path.name


def _luminance(colour: str) -> float:
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_badges_have_aa_contrast() -> None:
    """Every badge colour pair in the stylesheet reads at WCAG AA for small text (4.5:1)."""
    css = (REPO / "api" / "static" / "app.css").read_text()
    rules = re.findall(r"^(\.badge[^{]*)\{([^}]*)\}", css, re.MULTILINE)
    assert len(rules) >= 5
    for selector, body in rules:
        colour = re.search(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6})", body)
        background = re.search(r"background:\s*(#[0-9a-fA-F]{3,6})", body)
        assert colour, selector
        assert background, selector
        light, dark = sorted((_luminance(colour[1]), _luminance(background[1])), reverse=True)
        assert (light + 0.05) / (dark + 0.05) >= 4.5, selector
