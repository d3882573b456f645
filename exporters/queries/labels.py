"""SQL fragments that bound label values to the sets in settings (anything else: other)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def bounded(column: str, allowed: str) -> str:
    """``column`` when it is in the ``%(allowed)s`` array parameter, else 'other'."""
    value = f"{column}::text"
    return f"CASE WHEN {value} = ANY(%({allowed})s::text[]) THEN {value} ELSE 'other' END"


def bucket_index(expression: str, bounds: Sequence[float]) -> str:
    """The index of the first bound >= ``expression`` (len(bounds) for the +Inf bucket).

    Bounds come from settings as numbers, so they are rendered as literals.
    """
    arms = " ".join(
        f"WHEN {expression} <= {float(bound)!r} THEN {index}"
        for index, bound in enumerate(bounds)
        if not math.isinf(bound)
    )
    return f"CASE {arms} ELSE {len(bounds)} END"
