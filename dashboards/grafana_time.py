"""Grafana's time rules for Prometheus panels: interval, step and the built-in macros.

- **Interval.** The browser computes ``$__interval`` as the time range divided by the
  panel's max data points (its ``maxDataPoints``, else its width in pixels), rounded by
  Grafana's table of nice intervals and raised to the panel's min interval (else the
  datasource's ``timeInterval``, its scrape interval).
- **Step.** The Prometheus datasource's backend takes that interval as the minimum (a
  target's own ``interval`` replaces it), divides the range by the max data points again,
  rounds (its table includes the boundaries the browser's excludes), goes no finer than
  range / 11,000 points, and multiplies by the target's ``intervalFactor``. A range
  query's start and end are rounded down to a multiple of the step; an instant query runs
  at the range's end, unaligned.
- **Macros.** ``$__interval`` is the step in Grafana's short form (``2m``, ``1d``),
  ``$__rate_interval`` is max(browser interval + scrape interval, 4 × scrape interval) in
  Go's duration form (``2m15s``), ``$__range`` the range in whole seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from core.assets import package_dir

SCREEN_WIDTH = 1600  # pixels of the screen a dashboard fills
GRID_COLUMNS = 24
SAFE_RESOLUTION = 11_000  # the Prometheus backend's cap on points per series
DEFAULT_POINTS = 1500  # the backend's resolution when a request sends no max data points
DEFAULT_SCRAPE = "15s"  # the Prometheus backend's default when a datasource sets none
PROMETHEUS = "prometheus"
POSTGRES = "grafana-postgresql-datasource"

UNIT_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "M": 2_592_000_000,
    "y": 31_536_000_000,
}
DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|[smhdwMy])?$")
# (upper bound in ms, the interval it rounds to): Grafana's nice intervals.
ROUNDING = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)
YEAR_MS = 31_536_000_000


def duration_ms(text: str) -> int:
    """A Grafana interval (``15s``, ``1d``, ``500ms``; a bare number is seconds) in ms."""
    match = DURATION.match(text.strip().strip("<>"))
    if not match:
        raise ValueError(f"not a Grafana interval: {text!r}")
    return round(float(match.group(1)) * UNIT_MS[match.group(2) or "s"])


def round_interval(ms: float, *, backend: bool = False) -> int:
    """Grafana's nice interval for ``ms``: the browser's ``roundInterval`` (bounds
    exclusive) or the backend's ``gtime.RoundInterval`` (bounds inclusive)."""
    for bound, nice in ROUNDING:
        if ms < bound or (backend and ms == bound):
            return nice
    return YEAR_MS


def short_interval(ms: int) -> str:
    """``$__interval``'s form: the largest whole unit (``2m``, ``1d``), truncated."""
    for unit in ("y", "d", "h", "m", "s"):
        size = YEAR_MS if unit == "y" else UNIT_MS[unit]
        if ms >= size:
            return f"{ms // size}{unit}"
    return f"{max(ms, 1)}ms"


def go_duration(ms: int) -> str:
    """Go's ``time.Duration.String()``, the form ``$__rate_interval`` takes (``1m15s``)."""
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, fraction = divmod(rest, 1000)
    text = f"{seconds}" + (f".{fraction:03d}".rstrip("0") if fraction else "") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


@dataclass(frozen=True)
class Window:
    """A dashboard time range, unix seconds (millisecond precision, as the browser's)."""

    start: float
    end: float

    @classmethod
    def ending(cls, end: float, length: str) -> Window:
        return cls(end - duration_ms(length) / 1000, end)

    @property
    def ms(self) -> int:
        return round((self.end - self.start) * 1000)


@dataclass(frozen=True)
class Datasource:
    uid: str
    type: str
    scrape: str  # jsonData.timeInterval, the min interval of its panels


def datasources() -> dict[str, Datasource]:
    """The provisioned datasources by uid (``provisioning/grafana/datasources/``)."""
    path = package_dir("provisioning") / "grafana" / "datasources" / "opsdeck.yaml"
    found = {}
    for ds in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]:
        scrape = (ds.get("jsonData") or {}).get("timeInterval") or ""
        found[ds["uid"]] = Datasource(ds["uid"], ds["type"], scrape)
    return found


def max_data_points(panel: Mapping[str, Any], screen_width: int = SCREEN_WIDTH) -> int:
    """The panel's ``maxDataPoints``, else its width in pixels on the screen."""
    if panel.get("maxDataPoints"):
        return int(panel["maxDataPoints"])
    return screen_width * int(panel.get("gridPos", {}).get("w", GRID_COLUMNS)) // GRID_COLUMNS


def browser_interval_ms(window: Window, points: int, min_interval: str | None) -> int:
    """The browser's ``calculateInterval``: the interval sent with every query."""
    interval = round_interval(window.ms / points)
    low = duration_ms(min_interval) if min_interval else 1
    return max(interval, low)


def step_ms(window: Window, points: int, interval_ms: int, factor: int = 1) -> int:
    """The Prometheus backend's step: the browser's interval as the minimum, the range
    over max data points rounded, no finer than 11,000 points, times ``intervalFactor``."""
    raw = window.ms // (points or DEFAULT_POINTS)
    calculated = interval_ms if raw < interval_ms else round_interval(raw, backend=True)
    safe = round_interval(window.ms // SAFE_RESOLUTION, backend=True)
    return max(calculated, safe) * (factor or 1)


def rate_interval_ms(interval_ms: int, scrape: str) -> int:
    """``$__rate_interval``: max(interval + scrape interval, 4 × scrape interval)."""
    scrape_ms = duration_ms(scrape or DEFAULT_SCRAPE)
    return max(interval_ms + scrape_ms, 4 * scrape_ms)


@dataclass(frozen=True)
class Timing:
    """What Grafana derives from a window for one panel's Prometheus queries."""

    interval_ms: int  # the browser's
    step_ms: int
    rate_interval_ms: int
    range_ms: int

    @classmethod
    def of(
        cls,
        window: Window,
        points: int,
        panel_interval: str | None,
        scrape: str,
        query_interval: str | None = None,
        factor: int = 1,
    ) -> Timing:
        """For a panel of ``points`` max data points and min interval ``panel_interval``
        on a datasource scraped every ``scrape``; ``query_interval`` and ``factor`` are a
        target's own min step and ``intervalFactor``."""
        interval = browser_interval_ms(window, points, panel_interval or scrape or None)
        minimum = duration_ms(query_interval) if query_interval else interval
        step = step_ms(window, points, minimum, factor)
        rate = rate_interval_ms(interval, query_interval or scrape)
        return cls(interval, step, rate, window.ms)

    def macros(self) -> dict[str, str]:
        """The backend's built-in variables, each in the form it substitutes."""
        range_s = round(self.range_ms / 1000)
        return {
            "__interval_ms": str(self.step_ms),
            "__interval": short_interval(self.step_ms),
            "__range_ms": str(self.range_ms),
            "__range_s": str(range_s),
            "__range": f"{range_s}s",
            "__rate_interval_ms": str(self.rate_interval_ms),
            "__rate_interval": go_duration(self.rate_interval_ms),
        }
