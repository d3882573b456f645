"""Grafana's time range in links: ``from``/``to`` as epoch milliseconds, ISO 8601, or
relative (``now``, ``now-24h``, ``now-7d/d``), as ``${__url_time_range}`` writes them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from api.problems import invalid

RELATIVE = re.compile(
    r"^now(?:(?P<sign>[+-])(?P<amount>\d{1,6})(?P<unit>[smhdwMy]))?(?:/(?P<round>[smhdwMy]))?$"
)
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_EPOCH_MS = 253_402_300_799_000  # 9999-12-31


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)


def _shift_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise ValueError("out of range")
    return moment.replace(year=year, month=month + 1, day=min(moment.day, 28))


def _round(moment: datetime, unit: str, up: bool) -> datetime:
    if unit in "smh":
        step = UNIT_SECONDS[unit]
        floor = datetime.fromtimestamp(moment.timestamp() // step * step, UTC)
        start, span = floor, timedelta(seconds=step)
    elif unit in "dw":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if unit == "w":
            start -= timedelta(days=start.weekday())
        span = timedelta(days=1 if unit == "d" else 7)
    else:
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if unit == "y":
            start = start.replace(month=1)
        end = _shift_months(start, 1 if unit == "M" else 12)
        return end - timedelta(microseconds=1) if up else start
    return start + span - timedelta(microseconds=1) if up else start


def parse_moment(name: str, value: str, now: datetime, *, round_up: bool) -> datetime:
    """One end of the range; ``round_up`` makes ``now/d`` in ``to`` mean the end of today."""
    text = value.strip()
    try:
        if text.isdigit():
            millis = int(text)
            if millis > MAX_EPOCH_MS:
                raise ValueError("out of range")
            return datetime.fromtimestamp(millis / 1000, UTC)
        match = RELATIVE.match(text)
        if match:
            return _relative(match, now, round_up)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError) as exc:
        raise invalid(name, f"not a time: {exc}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _relative(match: re.Match[str], now: datetime, round_up: bool) -> datetime:
    moment = now
    if match["sign"]:
        amount = int(match["amount"]) * (1 if match["sign"] == "+" else -1)
        unit = match["unit"]
        if unit in UNIT_SECONDS:
            moment = moment + timedelta(seconds=amount * UNIT_SECONDS[unit])
        else:
            moment = _shift_months(moment, amount * (1 if unit == "M" else 12))
    if match["round"]:
        moment = _round(moment, match["round"], round_up)
    return moment


def parse_range(
    raw_from: str | None,
    raw_to: str | None,
    default_from: str,
    default_to: str = "now",
    now: datetime | None = None,
) -> TimeRange:
    now = now or datetime.now(UTC)
    start = parse_moment("from", raw_from or default_from, now, round_up=False)
    end = parse_moment("to", raw_to or default_to, now, round_up=True)
    if start >= end:
        raise invalid("from", "must be earlier than to")
    return TimeRange(start, end)
