"""Grafana's time range in links: ``from``/``to`` as ``${__url_time_range}`` writes them.

A data link carries the dashboard's raw range, so the page it opens must compute the same
instants Grafana's ``dateMath.parse`` computed for the panel (moment.js calendar arithmetic),
or a drill-down shows other rows than the panel it came from. Accepted forms:

* epoch milliseconds (``1715781600000``);
* ISO 8601 (``2024-05-15T13:00:00.000Z``, what Grafana writes for absolute ranges); a value
  without an offset is in the ``timezone`` the request names (what a page's datetime-local
  inputs send), else UTC;
* date math after ``now``: any chain of ``+N<unit>``, ``-N<unit>`` and ``/<unit>`` with units
  ``y Q M w d h m s`` (``now-7d/d``, ``now/Q``, ``now-1d/d+8h``). As in Grafana, a missing
  ``N`` means 1, ``/`` takes no amount but 1, whitespace inside the math is ignored, and
  ``/fy`` / ``/fQ`` round to the fiscal year / quarter.

Arithmetic, step by step left to right as moment.js does it:

* ``y``, ``Q`` and ``M`` move by calendar months (12, 3, 1) and keep the day of the month,
  clamped to the last day of the target month: 31 January - 1M = 31 December, 31 March - 1M
  = 29 February in a leap year, 29 February - 1y = 28 February. ``w`` and ``d`` are 7 and 1
  days, ``h``, ``m``, ``s`` fixed lengths.
* ``/unit`` rounds down to the start of the unit on the ``from`` side and up to its last
  instant on the ``to`` side, as Grafana's dashboards evaluate ``to`` (``to=now/d`` is the end
  of today, so ``now/d`` to ``now/d`` is all of today). Grafana's last instant is ``.999``
  milliseconds; here it is the unit's last microsecond, because ``to`` is compared inclusively
  with PostgreSQL's microsecond timestamps and rows in the final millisecond belong to the unit.
* Quarters start in January, April, July and October. Fiscal units use Grafana's default
  fiscal year start, January (``fiscalYearStartMonth: 0``, which every opsdeck dashboard
  keeps), so ``/fy`` and ``/fQ`` equal ``/y`` and ``/Q``.
* Weeks start on Monday (ISO 8601). Grafana's default ``now/w`` follows the viewer: the
  dashboard's ``weekStart``, else the user's preference, else the browser locale (Monday for
  ISO and most European locales, Sunday for en-US). A server has no browser and opsdeck's
  dashboards set no ``weekStart``, so the ISO week is the one answer that does not depend on
  who clicked; a viewer whose Grafana starts weeks on Sunday sees ``w`` ranges a day earlier.
* Everything is evaluated in UTC. Grafana evaluates in the dashboard's time zone (opsdeck's
  dashboards say ``browser``), so for a viewer away from UTC ``now/d`` here is UTC midnight.

Anything else is refused with a :class:`~api.problems.Problem` (400) naming the parameter and
what was wrong.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from api.problems import invalid

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_EPOCH_MS = 253_402_300_799_000  # 9999-12-31
UNITS = "yQMwdhms"
MONTHS = {"y": 12, "Q": 3, "M": 1}
FIXED = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
FISCAL_UNITS = "yQ"
MAX_AMOUNT_DIGITS = 9  # Grafana gives up on longer amounts too
STEP = re.compile(r"(?P<op>[-+/])(?P<amount>\d*)(?P<fiscal>f?)(?P<unit>.?)", re.DOTALL)
LAST_MICROSECOND = timedelta(microseconds=1)
SHOWN = 60  # characters of a refused value echoed back in the error


class DateMathError(ValueError):
    """Date math that Grafana would not evaluate either; the message says what is wrong."""


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


def add_months(moment: datetime, months: int) -> datetime:
    """Moment's month arithmetic: same day of month, clamped to the target month's length."""
    year, month = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    if not 1 <= year <= 9999:
        raise OverflowError("year out of range")
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def shift(moment: datetime, amount: int, unit: str) -> datetime:
    if unit in MONTHS:
        return add_months(moment, amount * MONTHS[unit])
    return moment + amount * FIXED[unit]


def start_of(moment: datetime, unit: str) -> datetime:
    if unit == "s":
        return moment.replace(microsecond=0)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    if unit == "h":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return day
    if unit == "w":
        return day - timedelta(days=day.weekday())  # weekday() is 0 on Monday
    first_month = {"y": 1, "Q": (day.month - 1) // 3 * 3 + 1, "M": day.month}[unit]
    return day.replace(month=first_month, day=1)


def end_of(moment: datetime, unit: str) -> datetime:
    return shift(start_of(moment, unit), 1, unit) - LAST_MICROSECOND


def apply_math(math: str, now: datetime, *, round_up: bool) -> datetime:
    """Evaluate the part after ``now`` (``-1d/d+8h``) step by step, as Grafana does."""
    text = re.sub(r"\s", "", math)
    moment, position = now, 0
    while position < len(text):
        step = STEP.match(text, position)
        if step is None:
            raise DateMathError(f"expected +N<unit>, -N<unit> or /<unit> at {text[position:]!r}")
        try:
            moment = _apply_step(step, moment, round_up)
        except OverflowError:
            raise DateMathError(
                f"{step[0]!r} leaves the supported range, years 1 to 9999"
            ) from None
        position = step.end()
    return moment


def _apply_step(step: re.Match[str], moment: datetime, round_up: bool) -> datetime:
    op, digits, fiscal, unit = step["op"], step["amount"], step["fiscal"], step["unit"]
    if not unit:
        raise DateMathError(f"{step[0]!r} needs a unit ({' '.join(UNITS)})")
    if unit not in UNITS:
        raise DateMathError(f"unknown unit {unit!r} in {step[0]!r} (units: {' '.join(UNITS)})")
    if len(digits) > MAX_AMOUNT_DIGITS:
        raise DateMathError(f"amount in {step[0]!r} is longer than {MAX_AMOUNT_DIGITS} digits")
    amount = int(digits) if digits else 1
    if op == "/":
        if amount != 1:
            raise DateMathError(f"{step[0]!r}: rounding takes a single unit, like /{unit}")
        if fiscal and unit not in FISCAL_UNITS:
            raise DateMathError(f"{step[0]!r}: fiscal rounding is /fy or /fQ")
        return end_of(moment, unit) if round_up else start_of(moment, unit)
    if fiscal:
        raise DateMathError(f"{step[0]!r}: 'f' (fiscal) only applies to rounding, /fy or /fQ")
    return shift(moment, amount if op == "+" else -amount, unit)


def parse_moment(
    name: str, value: str, now: datetime, *, round_up: bool, zone: tzinfo = UTC
) -> datetime:
    """One end of the range; ``round_up`` makes ``now/d`` in ``to`` mean the end of today;
    an ISO value without an offset is a wall time in ``zone``."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    text = value.strip()
    try:
        if re.fullmatch(r"[0-9]+", text):
            return _epoch_ms(text)
        if text.startswith("now"):
            return apply_math(text[3:], now.astimezone(UTC), round_up=round_up)
        return _iso(text, zone)
    except DateMathError as exc:
        raise invalid(name, f"{text[:SHOWN]!r}: {exc}{_plus_hint(text)}") from None
    except (ValueError, OverflowError) as exc:
        reason = "out of the supported range" if isinstance(exc, OverflowError) else str(exc)
        if reason.startswith("Invalid isoformat string"):
            reason = "neither epoch ms, ISO 8601 nor now-based date math like now-24h"
        raise invalid(name, f"{text[:SHOWN]!r} is not a time: {reason}") from None


def _epoch_ms(text: str) -> datetime:
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_EPOCH_MS)) or int(digits) > MAX_EPOCH_MS:
        raise ValueError("epoch milliseconds beyond 9999-12-31")
    return EPOCH + timedelta(milliseconds=int(digits))


def _iso(text: str, zone: tzinfo) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _plus_hint(value: str) -> str:
    # A '+' typed into a URL's query arrives as a space, so now-1d/d+8h becomes "now-1d/d 8h".
    return " (a '+' in a URL query means a space: write it as %2B)" if " " in value else ""


def parse_range(
    raw_from: str | None,
    raw_to: str | None,
    default_from: str,
    default_to: str = "now",
    now: datetime | None = None,
    zone: tzinfo = UTC,
) -> TimeRange:
    now = now or datetime.now(UTC)
    start = parse_moment("from", raw_from or default_from, now, round_up=False, zone=zone)
    end = parse_moment("to", raw_to or default_to, now, round_up=True, zone=zone)
    if start >= end:
        raise invalid("from", "must be earlier than to")
    return TimeRange(start, end)
