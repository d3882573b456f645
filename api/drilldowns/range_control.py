"""The time range control of a list page: Grafana's quick ranges as links, two
datetime-local inputs for an absolute range in the viewer's zone, and the range applied,
said readably.

Everything it writes is Grafana's own ``from``/``to`` grammar (:mod:`api.timerange`): a
quick range is the same pair Grafana's picker puts in its URL (``from=now-1h&to=now``); an
absolute range is two wall times plus ``timezone`` (the viewer's), which the page's script
turns into epoch milliseconds before sending, as Grafana does. Without the script the form
still works: the server reads the wall times in that zone. The other parameters of the
page (filters, mode, sort) ride along on every link and form, and a new range starts at the
first page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from api.display import moments
from api.drilldowns.params import ListParams
from api.drilldowns.spec import ListView

UNIT_WORDS = {
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "M": "month",
    "y": "year",
}
LAST = re.compile(r"now-(?P<amount>[1-9][0-9]{0,5})(?P<unit>[mhdwMy])")


@dataclass(frozen=True)
class QuickRange:
    label: str
    start: str  # from
    end: str  # to


# Grafana's default quick ranges (its time picker's list), in its order.
QUICK_RANGES = (
    QuickRange("Last 5 minutes", "now-5m", "now"),
    QuickRange("Last 15 minutes", "now-15m", "now"),
    QuickRange("Last 30 minutes", "now-30m", "now"),
    QuickRange("Last 1 hour", "now-1h", "now"),
    QuickRange("Last 3 hours", "now-3h", "now"),
    QuickRange("Last 6 hours", "now-6h", "now"),
    QuickRange("Last 12 hours", "now-12h", "now"),
    QuickRange("Last 24 hours", "now-24h", "now"),
    QuickRange("Last 2 days", "now-2d", "now"),
    QuickRange("Last 7 days", "now-7d", "now"),
    QuickRange("Last 30 days", "now-30d", "now"),
    QuickRange("Last 90 days", "now-90d", "now"),
    QuickRange("Yesterday", "now-1d/d", "now-1d/d"),
    QuickRange("Previous week", "now-1w/w", "now-1w/w"),
    QuickRange("Previous month", "now-1M/M", "now-1M/M"),
    QuickRange("Today", "now/d", "now/d"),
    QuickRange("Today so far", "now/d", "now"),
    QuickRange("This week so far", "now/w", "now"),
    QuickRange("This month so far", "now/M", "now"),
)
BY_PAIR = {(q.start, q.end): q for q in QUICK_RANGES}


def relative_label(start: str, end: str) -> str | None:
    """A quick range's name, or "Last N units" for any ``now-N<unit>`` to ``now``."""
    quick = BY_PAIR.get((start.strip(), end.strip()))
    if quick is not None:
        return quick.label
    last = LAST.fullmatch(start.strip())
    if last is None or end.strip() != "now":
        return None
    amount, word = int(last["amount"]), UNIT_WORDS[last["unit"]]
    return f"Last {amount} {word}{'' if amount == 1 else 's'}"


def carried(params: ListParams, view: ListView) -> list[tuple[str, str]]:
    """The page's other parameters (filters, mode, sort), as query pairs a range link or
    form carries along."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.shown.items():
        if value is None:
            continue
        for one in value if isinstance(value, list) else [value]:
            pairs.append((name, _text(one)))
    if params.livemode is not None:
        pairs.append(("livemode", params.livemode))
    if params.sort != view.sorts[0] or params.order != "desc":
        pairs += [("sort", params.sort), ("order", params.order)]
    return pairs


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def control(
    params: ListParams, view: ListView, where: ZoneInfo, timezone: str | None
) -> dict[str, Any]:
    """What the template needs: the quick range links, the absolute form's values, the
    applied range said readably, and the hidden fields the filter form carries (the range
    as written, with the ``timezone`` it was written in)."""
    other = carried(params, view)
    current = (params.raw_from.strip(), params.raw_to.strip())
    links = [
        {
            "label": q.label,
            "href": f"/{view.name}?{urlencode([('from', q.start), ('to', q.end), *other])}",
            "current": (q.start, q.end) == current,
        }
        for q in QUICK_RANGES
    ]
    start, end = params.range.start, params.range.end
    zone_name = str(where)
    keep = [("from", params.raw_from), ("to", params.raw_to)]
    if timezone:
        keep.append(("timezone", timezone))
    return {
        "quick": links,
        "label": relative_label(*current),
        "applied": f"{moments.plain(start, where)} → {moments.plain(end, where)} {zone_name}",
        "start_input": moments.input_value(start, where),
        "end_input": moments.input_value(end, where),
        "zone": zone_name,
        "carried": other,
        "range_fields": keep,
    }
