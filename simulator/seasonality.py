"""Daily and weekly seasonality: how busy the platform is at a given moment.

``intensity`` serves the live stream (a multiplier around 1.0); ``sample_times`` draws
backfill timestamps with the same shape, vectorised, at minute resolution.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from simulator.vocabulary import HOURLY, WEEKLY

_HOURLY = np.asarray(HOURLY) / np.mean(HOURLY)
_WEEKLY = np.asarray(WEEKLY) / np.mean(WEEKLY)
MICROS_PER_MINUTE = 60_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def minute_weights(minutes: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Seasonal weight of each epoch minute, interpolated between hours for smooth curves."""
    hour_float = (minutes % 1440) / 60.0
    hour = hour_float.astype(np.int64)
    frac = hour_float - hour
    daily = _HOURLY[hour] * (1 - frac) + _HOURLY[(hour + 1) % 24] * frac
    # 1970-01-01 was a Thursday (weekday 3).
    weekday = ((minutes // 1440) + 3) % 7
    return np.asarray(daily * _WEEKLY[weekday], dtype=np.float64)


def intensity(moment: datetime) -> float:
    """How busy the platform is at ``moment`` relative to its average (mean 1.0)."""
    minute = np.asarray([to_micros(moment) // MICROS_PER_MINUTE], dtype=np.int64)
    return float(minute_weights(minute)[0])


def sample_times(
    rng: np.random.Generator, count: int, start_us: int, end_us: int
) -> npt.NDArray[np.int64]:
    """``count`` sorted epoch-microsecond timestamps in [start, end) with seasonal density."""
    first, last = start_us // MICROS_PER_MINUTE, (end_us - 1) // MICROS_PER_MINUTE
    minutes = np.arange(first, last + 1, dtype=np.int64)
    weights = minute_weights(minutes)
    cumulative = np.cumsum(weights)
    picks = np.searchsorted(cumulative, rng.random(count) * cumulative[-1], side="right")
    stamps = minutes[picks] * MICROS_PER_MINUTE + rng.integers(0, MICROS_PER_MINUTE, count)
    stamps = np.asarray(np.clip(stamps, start_us, end_us - 1), dtype=np.int64)
    stamps.sort()
    return stamps
