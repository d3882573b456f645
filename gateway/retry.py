"""What happens after an attempt: done, retried later, or parked as a dead letter.

Scheduled deliveries follow the retry schedule (immediately, then 5 s, 5 min, 30 min, 2 h,
5 h, 10 h, 14 h, 20 h, 24 h by default), each delay +/- ``retry_jitter`` so a recovering
endpoint is not hit by every retry at once. A 429's ``Retry-After`` is honoured when it asks
for longer. Manual, test and replay attempts are single shots: they never start a schedule.
A permanent failure (410 Gone, a blocked address) ends the delivery at once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

SINGLE_SHOT = frozenset({"manual", "test", "replay"})
MAX_RETRY_AFTER_SECONDS = 86_400.0


@dataclass(frozen=True)
class Decision:
    outcome: str  # succeeded, retry, dead
    delay: float | None = None  # seconds until the next attempt (retry only)
    reason: str | None = None  # why it is dead


def decide(
    *,
    succeeded: bool,
    permanent: bool,
    attempt: int,
    trigger: str,
    retry_after: float | None,
    schedule: Sequence[float],
    jitter: float,
    rng: random.Random,
) -> Decision:
    """The outcome of attempt number ``attempt`` (1-based) of a delivery."""
    if succeeded:
        return Decision("succeeded")
    if permanent:
        return Decision("dead", reason="permanent failure")
    if trigger in SINGLE_SHOT:
        return Decision("dead", reason=f"{trigger} attempt failed")
    if attempt > len(schedule):
        return Decision("dead", reason=f"failed {attempt} attempts")
    delay = schedule[attempt - 1] * rng.uniform(1 - jitter, 1 + jitter)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return Decision("retry", delay=delay)
