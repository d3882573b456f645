"""The template filters every page uses to show values: ``when`` (a time in the viewer's
zone), ``money`` (minor units in their currency), ``badge`` (a status's CSS classes),
``card_brand`` and ``readable``."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from api.display import labels, moments
from api.display.money import format_money


def _zone(context: Context) -> ZoneInfo:
    found = context.get("time_zone")
    return found if isinstance(found, ZoneInfo) else moments.zone(None)


@pass_context
def when(context: Context, value: Any) -> str:
    """A time (or its ISO text, as JSON-shaped page data holds it) in the viewer's zone;
    anything else as it is, nothing for None."""
    if value is None or value == "":
        return ""
    moment = moments.parse_iso(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        return str(value)
    return moments.format_moment(moment, _zone(context))


def money(minor: Any, code: str | None) -> str:
    if minor is None:
        return ""
    return format_money(int(minor), code)


def install(env: Environment) -> None:
    env.filters["when"] = when
    env.filters["money"] = money
    env.filters["badge"] = labels.badge_class
    env.filters["card_brand"] = labels.card_brand
    env.filters["readable"] = labels.readable
