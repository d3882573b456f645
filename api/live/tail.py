"""The tails of one database: each live list's changed rows, read once for every viewer.

Worker contract: this is the KPI engine's mechanism (``core/horizon.py``) pointed at the
live lists. A :class:`~core.horizon.Horizon` reads the commit horizon every
``live.tail_interval_seconds``; for each followed list the tail then reads the rows whose
change time lies in ``[position, horizon)`` with one query (``api/queries/live.py``) and
hands them on as a :class:`Batch`. Every change before the horizon is committed and
visible, so however ids commit and however late rows change, each row version is read
exactly once, in the window of its change time. While the platform commits nothing (the
horizon's ceiling is at or behind a list's position), a tick costs the horizon's reading
alone. The cost is one query per list per tick whoever watches: viewers' filters are
applied to the batches in the API process (:mod:`api.live.hub`).

A list starts at the horizon it is first followed at (its first batch is empty, from there
to there) and is forgotten when no longer followed. The threads run only while some list
of the database is followed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from api.live.feeds import Feed
from core.application_names import API_LIVE
from core.database import close_quietly, connect
from core.failures import FailureReporter
from core.horizon import Horizon
from core.settings import Settings

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Batch:
    """The rows of one list whose change time lies in ``[since, until)``; each row's last
    value is its change time."""

    since: datetime
    until: datetime
    names: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


Publish = Callable[[str, Batch], None]


class DatabaseTail:
    """The horizon and the tails of the lists of one database, on two threads."""

    def __init__(
        self, url: str, settings: Settings, ignored: Sequence[str] | None, publish: Publish
    ) -> None:
        live = settings.live
        self._url = url
        self._timeout = settings.exporter.statement_timeout_seconds
        self._interval = live.tail_interval_seconds
        self._window = timedelta(seconds=live.max_window_seconds)
        horizon_settings = settings.exporter.model_copy(
            update={"fold_interval_seconds": live.tail_interval_seconds}
        )
        self.horizon = Horizon(url, horizon_settings, application_name=API_LIVE, ignored=ignored)
        self._publish = publish
        self._lock = threading.Lock()
        self._feeds: dict[str, Feed] = {}
        self._positions: dict[str, datetime] = {}
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.failures = FailureReporter("live tail", log)
        self.queries = 0  # window queries run (benchmarks and tests count them)

    @property
    def statements(self) -> int:
        """Every statement this database's tails have run: horizon readings and windows."""
        return self.horizon.readings + self.queries

    @property
    def running(self) -> bool:
        return bool(self._threads)

    def follow(self, feed: Feed) -> None:
        with self._lock:
            self._feeds[feed.name] = feed

    def drop(self, name: str) -> None:
        with self._lock:
            self._feeds.pop(name, None)
            self._positions.pop(name, None)

    @property
    def followed(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._feeds)

    def start(self) -> None:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self.horizon.run, args=(self._stop,), name="live-horizon"),
            threading.Thread(target=self._run, name="live-tail"),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stops both threads and waits for them (blocking: run it off the event loop)."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads = []

    def _run(self) -> None:
        seen: datetime | None = None
        try:
            while not self._stop.is_set():
                horizon = self.horizon.wait(seen, self._interval)
                if horizon is None or horizon == seen:
                    continue
                try:
                    self.step(horizon)
                    seen = horizon
                    self.failures.recovered()
                except psycopg.Error as exc:
                    self.failures.failed(exc)
                    self._close()
                    self._stop.wait(RETRY_SECONDS)
        finally:
            self._close()

    def step(self, horizon: datetime) -> None:
        """Bring every followed list up to ``horizon``."""
        with self._lock:
            feeds = list(self._feeds.values())
        for feed in feeds:
            self._advance(feed, horizon)

    def _advance(self, feed: Feed, horizon: datetime) -> None:
        with self._lock:
            position = self._positions.get(feed.name)
        if position is None:
            self._moved(feed, Batch(horizon, horizon, (), ()))
            return
        while position < horizon:
            until = min(horizon, position + self._window)
            ceiling = self.horizon.ceiling
            if ceiling is not None and position >= ceiling:
                batch = Batch(position, until, (), ())  # nothing committed since
            else:
                batch = self._read(feed, position, until)
            if not self._moved(feed, batch):
                return
            position = until

    def _moved(self, feed: Feed, batch: Batch) -> bool:
        """Publish a batch of a list still followed; False once it is not."""
        with self._lock:
            if feed.name not in self._feeds:
                return False
            self._positions[feed.name] = batch.until
        self._publish(feed.name, batch)
        return True

    def _read(self, feed: Feed, since: datetime, until: datetime) -> Batch:
        conn = self._connection()
        cursor = conn.execute(feed.sql, {"since": since, "until": until})
        self.queries += 1
        names = tuple(c.name for c in cursor.description or ())
        return Batch(since, until, names, tuple(tuple(r) for r in cursor.fetchall()))

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(
                self._url,
                application_name=API_LIVE,
                autocommit=True,
                read_only=True,
                statement_timeout_seconds=self._timeout,
            )
        return self._conn

    def _close(self) -> None:
        close_quietly(self._conn)
        self._conn = None
