"""What happens after an attempt: done, retried later, or parked as a dead letter.

Scheduled deliveries follow the retry schedule (immediately, then 5 s, 5 min, 30 min, 2 h,
5 h, 10 h, 14 h, 20 h, 24 h by default), each delay +/- ``retry_jitter`` so a recovering
endpoint is not hit by every retry at once. A 429's or 503's ``Retry-After`` is honoured
when it asks for longer, up to a day. The delay itself is :func:`core.retry.next_delay`,
the rule every durable queue shares. An endpoint with a retry schedule of its own
(:func:`schedule_for`) is retried on that one instead, under the same rule. Manual, test
and replay attempts are single shots: they never start a schedule. A permanent failure
(410 Gone, a blocked address) ends the delivery at once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from core.retry import next_delay
from core.settings import WebhookSettings

SINGLE_SHOT = frozenset({"manual", "test", "replay"})
MAX_RETRY_AFTER_SECONDS = 86_400.0


def schedule_for(own: Sequence[float] | None, hooks: WebhookSettings) -> Sequence[float]:
    """The retry schedule of an endpoint: its own, or the global one when it has none."""
    return hooks.retry_schedule_seconds if own is None else own


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
    delay = next_delay(
        schedule,
        attempt,
        jitter=jitter,
        rng=rng,
        retry_after=retry_after,
        max_retry_after=MAX_RETRY_AFTER_SECONDS,
    )
    if delay is None:
        return Decision("dead", reason=f"failed {attempt} attempts")
    return Decision("retry", delay=delay)
