"""The commit horizon: an event time before which every platform event is visible.

Why folding by event time is exact. Every event time (``confirmed_at``, ``captured_at``,
an insert's ``updated_at`` ...) is written by the transaction that makes the event happen,
from the database clock, so it is never earlier than that transaction's start. Read
``pg_stat_activity`` and take ``h = min(statement start, oldest open transaction start)``:
a transaction that is not yet visible either was open during that read (it started at or
after ``h``) or started after the read (after ``h`` too). So every event before ``h`` is
already committed and visible, and the window ``[last h, this h)`` can be folded once and
never again, whatever order ids commit in and however late rows change afterwards.

``horizon_margin_seconds`` covers the moment between a transaction taking its start time
and announcing it in ``pg_stat_activity`` (and platforms that stamp events from their own
clocks). Without the right to read other sessions' activity (``pg_read_all_stats``) or on
a replica, the horizon trails the clock by ``horizon_lookback_seconds`` instead, which is
exact as long as no writing transaction runs longer than that.

Which sessions count. Only a transaction that writes the platform can hold back an event,
so the read leaves out opsdeck's own sessions that never write it (the exporter, the API,
the worker's ops sessions, the outbox tail's read-only snapshots: ``HORIZON_IGNORED`` of
``core/application_names.py``) plus any named in ``horizon_ignore_applications``; a long
read of theirs does not hold the KPIs back. The gateway's inbound processing does write the
platform (``platform.psp_transactions``) and is waited for like the platform's own writers.

The ceiling: an event time at or after which no visible event lies. Each read also takes
the statement's snapshot and the clock after it; when a transaction other than opsdeck's
own ended since the previous read (``core/commits.py``), the ceiling moves to that clock
plus ``horizon_margin_seconds`` (event times are written by their transactions, so never
later than their commits). A reader whose cursor is at or past the ceiling has nothing to
read below the horizon: the window ``[cursor, horizon)`` is empty until the platform
commits again. A caller whose writes go to the same server says so
(``own_writes_shared``) and registers them with :meth:`Horizon.own`; otherwise each of
them moves the ceiling like the platform's commits do.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from core.application_names import EXPORTER, HORIZON_IGNORED
from core.commits import OwnTransactions, XidSnapshot
from core.database import close_quietly, connect
from core.failures import FailureReporter, run_every
from core.queries import horizon as q
from core.settings import ExporterSettings

log = logging.getLogger(__name__)


def ignored_applications(settings: ExporterSettings) -> list[str]:
    """The sessions the horizon leaves out: opsdeck's own that never write the platform,
    and those the settings add."""
    return sorted({*HORIZON_IGNORED, *settings.horizon_ignore_applications})


class Horizon:
    """Publishes the latest commit horizon; collectors wait on it."""

    def __init__(
        self,
        platform_url: str,
        settings: ExporterSettings,
        *,
        own_writes_shared: bool = False,
        application_name: str = EXPORTER,
        ignored: Sequence[str] | None = None,
    ) -> None:
        """``ignored`` replaces :func:`ignored_applications` for a reader of other tables
        than the platform's (whose writers are other sessions); ``application_name`` names
        the reading session."""
        self._url = platform_url
        self._settings = settings
        self._application_name = application_name
        self._ignored = sorted(ignored) if ignored is not None else ignored_applications(settings)
        self._changed = threading.Condition()
        self._value: datetime | None = None
        self._ceiling: datetime | None = None
        self._snapshot: XidSnapshot | None = None
        self._own = OwnTransactions()
        self._own_shared = own_writes_shared
        self._conn: psycopg.Connection[Any] | None = None
        self._exact: bool | None = None
        self.readings = 0  # statements run to read the horizon (benchmarks count them)
        self.failures = FailureReporter("commit horizon", log)

    @property
    def value(self) -> datetime | None:
        with self._changed:
            return self._value

    @property
    def ceiling(self) -> datetime | None:
        """No event visible at the latest reading lies at or after it. Read after
        :meth:`wait`: it is at least as new as the horizon that returned."""
        with self._changed:
            return self._ceiling

    @property
    def tells_own_writes(self) -> bool:
        """Whether :meth:`own` is worth calling: opsdeck's writes share the server."""
        return self._own_shared

    def own(self, xid: int) -> None:
        """Register a writing transaction of opsdeck's own, before it commits."""
        if self._own_shared:
            self._own.add(xid)

    def wait(self, after: datetime | None, timeout: float) -> datetime | None:
        """The horizon once it has moved past ``after`` (or after ``timeout``)."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._value is not None and self._value != after, timeout
            )
            return self._value

    def run(self, stop: threading.Event) -> None:
        interval = self._settings.fold_interval_seconds
        run_every(stop, interval, self._advance, self.failures, lambda _: self._close())
        self._close()

    def _advance(self) -> None:
        conn = self._connection()
        if self._exact is None:
            row = conn.execute(q.CAN_SEE_ACTIVITY).fetchone()
            self.readings += 1
            self._exact = bool(row and row[0])
            if not self._exact:
                log.warning(
                    "cannot read other sessions in pg_stat_activity (grant pg_read_all_stats) "
                    "or reading a replica: the horizon trails the clock by %.1f s",
                    self._settings.horizon_lookback_seconds,
                )
        self.readings += 1
        if self._exact:
            params: dict[str, Any] = {
                "margin": self._settings.horizon_margin_seconds,
                "ignored": self._ignored,
            }
            row = conn.execute(q.ACTIVITY, params).fetchone()
        else:
            row = conn.execute(
                q.LOOKBACK, {"lookback": self._settings.horizon_lookback_seconds}
            ).fetchone()
        assert row is not None
        self._publish(row[0], self._moved_ceiling(XidSnapshot.parse(row[1]), row[2]))

    def _moved_ceiling(self, snapshot: XidSnapshot, clock: datetime) -> datetime | None:
        """The new ceiling if another's transaction ended since the last reading."""
        earlier, self._snapshot = self._snapshot, snapshot
        if not self._own.compare(earlier, snapshot):
            return None
        return clock + timedelta(seconds=self._settings.horizon_margin_seconds)

    def _publish(self, candidate: datetime, ceiling: datetime | None) -> None:
        with self._changed:
            if ceiling is not None and (self._ceiling is None or ceiling > self._ceiling):
                self._ceiling = ceiling
            if self._value is not None and candidate < self._value:
                # A session the last read did not see started earlier than the horizon we
                # already gave out: keep the horizon monotonic and say so.
                log.warning("commit horizon went back from %s to %s; kept", self._value, candidate)
                return
            self._value = candidate
            self._changed.notify_all()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(
                self._url,
                application_name=self._application_name,
                autocommit=True,
                statement_timeout_seconds=self._settings.statement_timeout_seconds,
            )
        return self._conn

    def _close(self) -> None:
        close_quietly(self._conn)
        self._conn = None
