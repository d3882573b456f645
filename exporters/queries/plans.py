"""Platform connections: how fold queries are planned (see :mod:`exporters.plans`)."""

from __future__ import annotations

# Session-wide (not LOCAL), so it outlives the read-only transaction it is set in.
SET_PLAN_CACHE_MODE = "SELECT set_config('plan_cache_mode', %(mode)s, false)"
