"""Time units for the simulator, in epoch microseconds (what Arrow and numpy use)."""

from __future__ import annotations

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
