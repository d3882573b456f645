"""Counting a list's matches: exactly up to a cap, else the planner's estimate.

``CAPPED`` stops reading at ``count_cap`` rows, so its cost is bounded by the cap whatever
the table's size; ``ESTIMATE`` only plans the query (``EXPLAIN`` reads no row)."""

from __future__ import annotations


def capped(matching: str) -> str:
    return f"SELECT count(*) FROM ({matching} LIMIT %(count_cap)s) c"


def estimate(matching: str) -> str:
    return f"EXPLAIN (FORMAT JSON) {matching}"
