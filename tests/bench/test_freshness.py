"""The benchmark's freshness: markers counted are timed, and a contender that never
counts one is recorded as never (inf) after the give-up time, instead of hanging the run;
one that never publishes a value is given up on too, and measured as it runs."""

from __future__ import annotations

import math
import time

from bench.exporter import MARKER_METRIC, Contender, freshness, publishes


class _Scripted(Contender):
    """Serves the marker revenue it is told to: ``counts_after`` scrapes after each insert
    (None: never)."""

    name = "scripted"

    def __init__(self, counts_after: int | None) -> None:
        self.counts_after = counts_after
        self.scrapes = 0
        self.value = 0

    def scrape(self, timeout: float = 900) -> str:
        self.scrapes += 1
        if self.counts_after is not None and self.scrapes % (self.counts_after + 1) == 0:
            self.value += 1
        return f'{MARKER_METRIC}{{currency="other"}} {self.value}\n'


def test_counted_markers_are_timed(db_url: str) -> None:
    delays = freshness(_Scripted(counts_after=2), db_url, 3, [1], give_up=10)
    assert len(delays) == 3
    assert all(0 < d < 10 for d in delays)


def test_a_marker_never_counted_is_recorded_as_never_after_the_give_up_time(
    db_url: str,
) -> None:
    delays = freshness(_Scripted(counts_after=None), db_url, 3, [1], give_up=0.3)
    assert delays == [math.inf]


def test_a_contender_that_never_publishes_is_given_up_on() -> None:
    asked: list[float] = []

    def never() -> bool:
        asked.append(time.monotonic())
        return False

    started = time.monotonic()
    assert publishes("silent", never, give_up=1.2) is False
    assert 1.2 <= time.monotonic() - started < 3.0
    assert len(asked) >= 2  # asked again until the give-up time, not once


def test_a_contender_that_publishes_is_waited_for() -> None:
    answers = iter([False, False, True])
    assert publishes("slow", lambda: next(answers), give_up=30) is True
