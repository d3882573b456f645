"""A drilldown row as the cells of an HTML table: text for people (times in the viewer's
zone, money in its currency, card brands by name), the page a value links to, and the
badge a status is shown in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict
from urllib.parse import quote
from zoneinfo import ZoneInfo

from api.display import labels
from api.display.moments import format_moment
from api.display.money import format_money
from api.drilldowns import render
from api.drilldowns.spec import Field


class Cell(TypedDict):
    text: str
    link: str | None
    badge: str | None  # CSS classes, when the value is shown as a badge


def display(value: Any, where: ZoneInfo) -> str:
    """A stored value as a cell shows it: times in the viewer's zone."""
    if isinstance(value, datetime):
        return format_moment(value, where)
    return render.display(value)


def _text(field: Field, value: Any, row: dict[str, Any], where: ZoneInfo) -> str:
    if value is None:
        return ""
    if field.currency is not None and isinstance(value, int) and not isinstance(value, bool):
        return format_money(value, row.get(field.currency))
    if field.show == "card_brand" and isinstance(value, str):
        return labels.card_brand(value)
    if field.show == "badge" and isinstance(value, str):
        return labels.readable(value)
    return display(value, where)


def cells(
    fields: Sequence[Field], names: Sequence[str], row: Sequence[Any], where: ZoneInfo
) -> list[Cell]:
    by_name = dict(zip(names, row, strict=True))
    found: list[Cell] = []
    for field in fields:
        value = by_name[field.name]
        link = None
        if field.link and value is not None:
            link = field.link.format(**{n: quote(str(v), safe="") for n, v in by_name.items()})
        badge = None
        if field.show == "badge" and isinstance(value, str) and value:
            badge = labels.badge_class(value)
        found.append({"text": _text(field, value, by_name, where), "link": link, "badge": badge})
    return found
