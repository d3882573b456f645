"""The benchmark's freshness: markers counted are timed, and a contender that never
counts one is recorded as never (inf) after the give-up time, instead of hanging the run."""

from __future__ import annotations

import math

from bench.exporter import MARKER_METRIC, Contender, freshness


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
