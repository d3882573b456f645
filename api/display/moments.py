"""Times for people: ISO 8601 in the viewer's time zone, the zone always shown.

A cell reads ``2026-12-05 14:03:07 +01:00`` (``UTC`` for viewers in UTC): the offset is
the one in force at that instant, so a range across a daylight-saving change stays exact.
Zones are IANA names as Python's ``zoneinfo`` lists them; anything else is refused.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from functools import cache

DEFAULT_ZONE = "UTC"
ISO_DAY_TIME = "%Y-%m-%d %H:%M:%S"
# What a datetime-local input holds (seconds included: step="1").
LOCAL_INPUT = "%Y-%m-%dT%H:%M:%S"


@cache
def available() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def known(name: str) -> bool:
    return name in available()


def zone(name: str | None) -> zoneinfo.ZoneInfo:
    """The zone of a stored name; a name this machine no longer knows reads as UTC."""
    if name and known(name):
        return zoneinfo.ZoneInfo(name)
    return zoneinfo.ZoneInfo(DEFAULT_ZONE)


def offset(value: datetime) -> str:
    """``+01:00``; ``UTC`` for UTC itself."""
    if str(value.tzinfo) == DEFAULT_ZONE:
        return DEFAULT_ZONE
    delta = value.utcoffset() or timedelta(0)
    sign = "-" if delta < timedelta(0) else "+"
    minutes = int(abs(delta).total_seconds()) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def local(value: datetime, where: zoneinfo.ZoneInfo) -> datetime:
    """The instant in ``where``; a naive value is taken as UTC, as the database stores it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(where)


def format_moment(value: datetime, where: zoneinfo.ZoneInfo) -> str:
    shown = local(value, where)
    return f"{shown.strftime(ISO_DAY_TIME)} {offset(shown)}"


def plain(value: datetime, where: zoneinfo.ZoneInfo) -> str:
    """The wall time in ``where`` alone, for text that names the zone once."""
    return local(value, where).strftime(ISO_DAY_TIME)


def parse_iso(text: str) -> datetime | None:
    """A time written as ISO 8601 (what JSON-shaped page data carries), or None."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def input_value(value: datetime, where: zoneinfo.ZoneInfo) -> str:
    """The instant as a datetime-local input shows it in ``where``."""
    return local(value, where).strftime(LOCAL_INPUT)
