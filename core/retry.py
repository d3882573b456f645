"""When a durable queue tries again: the one delay rule and the one ``Retry-After`` reader.

Every queue that retries from a table (outbound webhook deliveries, inbound PSP events,
incident notifications, Grafana annotations) asks :func:`next_delay` how long to wait, so
the rule is written once:

- ``attempt`` is 1-based: the number of the attempt that just failed (the first attempt is
  number 1, whenever it ran). The wait after attempt ``n`` is ``schedule[n - 1]``, so a
  schedule of k delays allows k + 1 attempts in all.
- When attempt ``n`` is past the schedule (``n > len(schedule)``) the queue gives up
  (``None``) with ``after_schedule="give_up"``, or waits the schedule's last delay again
  and again with ``after_schedule="repeat_last"`` (for work that is never abandoned
  because the other side is merely down).
- The scheduled delay is spread by ``jitter``: multiplied by a factor drawn uniformly from
  ``[1 - jitter, 1 + jitter]``, so rows that failed together do not all come back at the
  same instant to a peer that is just recovering.
- A ``Retry-After`` (seconds) is a floor, never a shortcut: the wait is the longer of the
  jittered schedule delay and ``min(retry_after, max_retry_after)``. The cap protects the
  queue from a peer asking it to wait for days; the server's own time is not jittered,
  because it names the moment it expects to be ready.

:func:`parse_retry_after` reads the header as RFC 9110 section 10.2.3 defines it:
delay-seconds (digits only) or an HTTP date (IMF-fixdate, and the obsolete RFC 850 and
asctime forms recipients must accept; a date without a zone is GMT). The result is seconds
from ``now``, never negative; an absent or unreadable value is ``None`` (the schedule
decides alone). :func:`retry_after_of` applies it to an answer: only 429 Too Many Requests
and 503 Service Unavailable carry a ``Retry-After`` that means "come back then".
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any, Literal, overload

_HEADER = "retry-after"
# 429 (RFC 6585) and 503 (RFC 9110 15.6.4) ask the client to wait; others do not.
HONOURED_STATUSES = frozenset({429, 503})
AfterSchedule = Literal["give_up", "repeat_last"]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from ``now`` (a Unix time; default: the clock)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _header(headers: Mapping[str, Any]) -> str | None:
    """The header's value, whatever the client's mapping: case-insensitive or not, a
    string or a list of strings (slack_sdk keeps every value in a list)."""
    for name, value in headers.items():
        if name.lower() != _HEADER:
            continue
        if isinstance(value, list | tuple):
            return str(value[0]) if value else None
        return str(value)
    return None


def retry_after_of(
    status: int, headers: Mapping[str, Any], now: float | None = None
) -> float | None:
    """The wait an answer with ``status`` and ``headers`` asks for, in seconds, or ``None``."""
    if status not in HONOURED_STATUSES:
        return None
    return parse_retry_after(_header(headers), now)


def _check(schedule: Sequence[float], attempt: int, jitter: float) -> None:
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, not {attempt}")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter is a fraction between 0 and 1, not {jitter}")
    if any(delay < 0 for delay in schedule):
        raise ValueError(f"a retry schedule has no negative delays: {list(schedule)}")


@overload
def next_delay(
    schedule: Sequence[float],
    attempt: int,
    *,
    jitter: float,
    rng: random.Random,
    retry_after: float | None = None,
    max_retry_after: float | None = None,
    after_schedule: Literal["repeat_last"],
) -> float: ...


@overload
def next_delay(
    schedule: Sequence[float],
    attempt: int,
    *,
    jitter: float,
    rng: random.Random,
    retry_after: float | None = None,
    max_retry_after: float | None = None,
    after_schedule: Literal["give_up"] = "give_up",
) -> float | None: ...


def next_delay(
    schedule: Sequence[float],
    attempt: int,
    *,
    jitter: float,
    rng: random.Random,
    retry_after: float | None = None,
    max_retry_after: float | None = None,
    after_schedule: AfterSchedule = "give_up",
) -> float | None:
    """Seconds until the attempt after attempt number ``attempt`` (1-based), or ``None``
    when the queue gives up; the module docstring states the rule."""
    _check(schedule, attempt, jitter)
    if retry_after is not None and max_retry_after is None:
        raise ValueError("a Retry-After is honoured only up to a max_retry_after")
    if after_schedule not in ("give_up", "repeat_last"):
        raise ValueError(f"after_schedule is give_up or repeat_last, not {after_schedule!r}")
    if attempt > len(schedule):
        if after_schedule == "give_up":
            return None
        if not schedule:
            raise ValueError("an empty schedule has no last delay to repeat")
        attempt = len(schedule)
    delay = schedule[attempt - 1] * rng.uniform(1 - jitter, 1 + jitter)
    if retry_after is not None and max_retry_after is not None:
        delay = max(delay, min(max(0.0, retry_after), max_retry_after))
    return delay
