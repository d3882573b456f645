"""The fold loop: every collector folds its next window of event time on its own thread.

One fold is one REPEATABLE READ read of the platform and one ops transaction that writes
the changed values and the collector's new cursor together, under the leader's epoch. A
collector that fails only stops itself: it reports ``opsdeck_collector_up = 0``, keeps its
cursor, and folds the whole missed window at its next success.

A window that starts at or after the horizon's ceiling holds no event (nothing committed
since the folds that brought the cursor there, see ``core/horizon.py``): the cursor moves
past it without a query, and an idle platform costs one horizon reading per tick plus the
gauges that slide with the clock. Such a window writes nothing either: after a restart it
is folded again, once, and found empty.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import psycopg

from core.application_names import EXPORTER
from core.database import close_quietly, connect
from core.failures import Backoff, FailureReporter, one_line
from core.horizon import Horizon
from core.leadership import Fence, Leadership, NotLeader
from core.queries import horizon as horizon_sql
from core.settings import Settings
from exporters.collector import Changes, Collector, FoldContext, SeriesKey
from exporters.metrics_page import Role
from exporters.plans import PlanChoice
from exporters.queries import store as q
from exporters.snapshot import Health, Snapshot

log = logging.getLogger(__name__)
MIN_WINDOW = timedelta(minutes=1)
CURSOR_SAVE_SECONDS = 5.0
MAX_RETRY_SECONDS = 5.0
FENCE = Fence(q.LEADER, q.FENCE_KEY)


class Engine:
    def __init__(
        self,
        settings: Settings,
        collectors: Sequence[Collector],
        snapshot: Snapshot,
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        exporter = settings.exporter
        self.on_ready = on_ready
        self.settings = settings
        self.collectors = collectors
        self.snapshot = snapshot
        self.ops_url = settings.require("database_url", "opsdeck exporter")
        self.platform_url = settings.platform_url or self.ops_url
        # On one database the exporter tells its own ops writes from the platform's commits.
        self.horizon = Horizon(
            self.platform_url, exporter, own_writes_shared=self.platform_url == self.ops_url
        )
        self.leadership = Leadership(
            self.ops_url,
            name=q.LEADER,
            lock_key=exporter.leader_lock_key,
            fence_key=q.FENCE_KEY,
            what="the KPI engine",
            application_name=EXPORTER,
            check_seconds=exporter.leader_check_seconds,
            statement_timeout_seconds=exporter.statement_timeout_seconds,
        )
        self.failures = FailureReporter("ops database", log)
        self.ready_epoch: int | None = None
        self.led_epoch: int | None = None  # led under it, and not seen ops since losing it
        self._ready = threading.Condition()

    def run(self, stop: threading.Event) -> None:
        threads = [
            threading.Thread(target=self.horizon.run, args=(stop,), name="horizon"),
            threading.Thread(target=self.leadership.run, args=(stop,), name="leadership"),
            *(
                threading.Thread(target=FoldLoop(self, c).run, args=(stop,), name=f"fold-{c.name}")
                for c in self.collectors
            ),
        ]
        for thread in threads:
            thread.start()
        try:
            self._supervise(stop)
        finally:
            stop.set()
            with self._ready:
                self._ready.notify_all()
            for thread in threads:
                thread.join()

    def _supervise(self, stop: threading.Event) -> None:
        """Load the committed values on election, every ``standby_refresh_seconds`` look.

        A standby reads nothing: it serves no KPI (see :mod:`exporters.metrics_page`), and a
        new leader loads everything anyway before it serves or folds."""
        refresh = self.settings.exporter.standby_refresh_seconds
        while not stop.is_set():
            epoch = self.leadership.epoch
            try:
                if epoch is not None and epoch != self.ready_epoch:
                    self._prepare(epoch)
                elif epoch is None:
                    self._set_ready(None)
                    self._reach_ops()
                self.failures.recovered()
            except psycopg.Error as exc:
                self.failures.failed(exc)
                self.snapshot.mark_all_down()
            stop.wait(refresh)

    def role(self) -> Role:
        """What this replica's /metrics carries (see :mod:`exporters.metrics_page`). Asked
        at every scrape, so a lost lock stops the leader's page at once."""
        epoch = self.leadership.epoch
        with self._ready:
            if epoch is not None and epoch == self.ready_epoch:
                return "leader"
            return "stranded" if self.led_epoch is not None else "standby"

    def _reach_ops(self) -> None:
        """A replica that led and lost the lock stays stranded until it reads ops again:
        then the lock is another's, or free for its own next try."""
        if self.led_epoch is None:
            return
        with connect(self.ops_url, application_name=EXPORTER) as conn:
            conn.execute(q.CURSORS).fetchall()
        with self._ready:
            self.led_epoch = None

    def _prepare(self, epoch: int) -> None:
        with connect(self.ops_url, application_name=EXPORTER) as conn:
            for collector in self.collectors:
                params = [
                    (collector.name, m, list(labels)) for m, labels in collector.zero_series()
                ]
                with conn.cursor() as cur:
                    cur.executemany(q.ENSURE, params)
            conn.commit()
        self._load()
        self._set_ready(epoch)
        with self._ready:
            self.led_epoch = epoch
        self.on_ready()

    def _load(self) -> None:
        with connect(self.ops_url, application_name=EXPORTER) as conn:
            values = conn.execute(q.VALUES).fetchall()
            cursors = conn.execute(q.CURSORS).fetchall()
        self.snapshot.load(values, cursors, source_ok=True)

    def _set_ready(self, epoch: int | None) -> None:
        with self._ready:
            self.ready_epoch = epoch
            self._ready.notify_all()

    def wait_ready(self, epoch: int, timeout: float) -> bool:
        with self._ready:
            return self._ready.wait_for(lambda: self.ready_epoch == epoch, timeout)


class FoldLoop:
    """Folds one collector's windows while this replica leads."""

    def __init__(self, engine: Engine, collector: Collector) -> None:
        self.engine = engine
        self.collector = collector
        exporter = engine.settings.exporter
        self.max_window = timedelta(seconds=exporter.max_fold_window_seconds)
        self.window = self.max_window
        self.interval = exporter.fold_interval_seconds
        self.gauge_interval = exporter.gauge_interval_seconds
        self.epoch: int | None = None
        self.cursor: datetime | None = None
        self.last_gauges = 0.0
        self.gauges_ceiling: datetime | None = None  # the ceiling when the gauges last ran
        self.cursor_saved = 0.0
        self.failures = FailureReporter(f"collector {collector.name}", log)
        self.backoff = Backoff(min(MAX_RETRY_SECONDS, 2 * self.interval), MAX_RETRY_SECONDS)
        self.platform: psycopg.Connection[Any] | None = None
        self.ops: psycopg.Connection[Any] | None = None
        self.plans = PlanChoice(timedelta(seconds=exporter.generic_plan_max_window_seconds))

    def run(self, stop: threading.Event) -> None:
        seen: datetime | None = None
        while not stop.is_set():
            horizon = self.engine.horizon.wait(seen, self.interval)
            epoch = self.engine.leadership.epoch
            if horizon is None or epoch is None or not self.engine.wait_ready(epoch, self.interval):
                self._close()
                continue
            try:
                caught_up = self.fold(epoch, horizon, self.engine.horizon.ceiling)
                self._succeeded()
            except Exception as exc:  # noqa: BLE001 - one collector's failure must not stop the others
                self._failed(exc)
                stop.wait(self.backoff.next())
                continue
            if caught_up:
                seen = horizon
        self._close()

    def fold(self, epoch: int, horizon: datetime, ceiling: datetime | None) -> bool:
        """Fold up to ``horizon`` (one window at most); True once the cursor reached it.
        No event lies at or after ``ceiling`` (None: unknown)."""
        if epoch != self.epoch:
            self.cursor = self.engine.snapshot.view().health[self.collector.name].horizon
            self.epoch = epoch
            self.gauges_ceiling = None
        if self.cursor is None:
            platform, _ = self._connections()
            self.cursor = self.collector.earliest(platform) or horizon
            self.plans.end_read(platform)
        since = self.cursor
        end = max(since, min(horizon, since + self.window))
        gauges_due = self._gauges_due(ceiling)
        if end <= since and not gauges_due:
            return True
        if self._empty_from(since, ceiling):
            if not gauges_due:
                self._pass(end)
                return self.cursor >= horizon
            since = end  # the gauges only
        platform, ops = self._connections()
        started = time.monotonic()
        try:
            self.plans.apply(platform, end - since)
            rows = self._fold_window(platform, ops, epoch, (since, end), gauges_due, started)
            ops.commit()
        finally:
            self.plans.end_read(platform)
            if ops.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                ops.rollback()
        duration = time.monotonic() - started
        self.cursor = end
        if gauges_due:
            self.last_gauges = started
            self.gauges_ceiling = ceiling
        self.engine.snapshot.apply(self.collector.name, rows, Health(True, duration, self.cursor))
        # Grow a window shrunk by timeouts back only while folds stay far from the timeout.
        if duration < 0.2 * self.engine.settings.exporter.statement_timeout_seconds:
            self.window = min(self.max_window, self.window * 1.5)
        return self.cursor >= horizon

    def _gauges_due(self, ceiling: datetime | None) -> bool:
        """Gauges refresh every ``gauge_interval``; those that do not slide with the clock
        only after the platform committed (the ceiling moved) since they last ran."""
        if not self.collector.has_gauges:
            return False
        if time.monotonic() - self.last_gauges < self.gauge_interval:
            return False
        return (
            self.collector.gauges_slide
            or ceiling is None
            or self.gauges_ceiling is None
            or ceiling != self.gauges_ceiling
        )

    def _empty_from(self, since: datetime, ceiling: datetime | None) -> bool:
        """Whether no event lies at or after ``since``: it is past the ceiling. A collector
        that is down reads anyway: its next success is what brings it back up."""
        if ceiling is None or since < ceiling:
            return False
        return self.engine.snapshot.health_view().health[self.collector.name].up

    def _pass(self, end: datetime) -> None:
        """Move the cursor over an empty window: no query, no write."""
        self.cursor = end
        health = self.engine.snapshot.health_view().health[self.collector.name]
        self.engine.snapshot.apply(self.collector.name, [], replace(health, horizon=end))

    def _fold_window(
        self,
        platform: psycopg.Connection[Any],
        ops: psycopg.Connection[Any],
        epoch: int,
        window: tuple[datetime, datetime],
        gauges_due: bool,
        started: float,
    ) -> list[tuple[Any, ...]]:
        since, until = window
        ctx = FoldContext(platform, ops, self.engine.settings, partial(self._fence, epoch=epoch))
        changes = Changes()
        if until > since:
            self.collector.fold(ctx, since, until, changes)
        if gauges_due:
            self.collector.refresh_gauges(ctx, changes)
            self._drop_unchanged(changes)
        # An empty window needs no write: folding it again after a restart changes nothing.
        # The cursor is still saved now and then, for a standby's lag and a short restart.
        due = started - self.cursor_saved >= CURSOR_SAVE_SECONDS
        if not (changes.increments or changes.gauges or due or ctx.opened):
            return []
        params = {
            "collector": self.collector.name,
            "horizon": until,
            "duration": time.monotonic() - started,
            **_series_params("add", changes.increments),
            **_series_params("set", changes.gauges),
        }
        rows = ctx.ops.execute(q.SAVE, params).fetchall()
        self._own_transaction(ctx.ops)
        self.cursor_saved = started
        return rows

    def _own_transaction(self, ops: psycopg.Connection[Any]) -> None:
        """Tell the horizon this transaction is opsdeck's own, not a platform commit."""
        if self.engine.horizon.tells_own_writes:
            row = ops.execute(horizon_sql.OWN_TRANSACTION).fetchone()
            if row and row[0] is not None:
                self.engine.horizon.own(int(row[0]))

    @staticmethod
    def _fence(ops: psycopg.Connection[Any], epoch: int) -> datetime:
        """Hold the fence until commit and check that ``epoch`` is still the leader's;
        return the ops database's clock."""
        return FENCE.check(ops, epoch)

    def _drop_unchanged(self, changes: Changes) -> None:
        served = self.engine.snapshot.view().values[self.collector.name]
        for key in [k for k, v in changes.gauges.items() if served.get(k) == v]:
            del changes.gauges[key]

    def _connections(self) -> tuple[psycopg.Connection[Any], psycopg.Connection[Any]]:
        timeout = self.engine.settings.exporter.statement_timeout_seconds
        if self.platform is None or self.platform.closed:
            self.platform = connect(
                self.engine.platform_url,
                application_name=EXPORTER,
                statement_timeout_seconds=timeout,
            )
            if self.collector.one_snapshot:
                self.platform.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                self.platform.read_only = True
            else:
                self.platform.autocommit = True
            self.plans.forget()
        if self.ops is None or self.ops.closed:
            self.ops = connect(
                self.engine.ops_url, application_name=EXPORTER, statement_timeout_seconds=timeout
            )
            # A fold lost in a crash is folded again from the last durable cursor: no
            # need to wait for the WAL flush on every commit.
            self.ops.execute("SET synchronous_commit = off")
            self.ops.commit()
        return self.platform, self.ops

    def _succeeded(self) -> None:
        self.failures.recovered()
        self.backoff.reset()

    def _failed(self, exc: Exception) -> None:
        self.engine.snapshot.mark_down(self.collector.name)
        if isinstance(exc, psycopg.errors.QueryCanceled):
            self.window = max(MIN_WINDOW, self.window / 2)
        # Anything but a database error or a lost election is a bug: log its traceback.
        bug = not isinstance(exc, psycopg.Error | NotLeader)
        if self.failures.failed(exc, traceback=bug):
            self._record_failure(one_line(exc))
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            self._close()

    def _record_failure(self, message: str) -> None:
        """Tell a standby too (best effort: the ops database may be what failed)."""
        try:
            with connect(
                self.engine.ops_url, application_name=EXPORTER, connect_timeout_seconds=2
            ) as conn:
                conn.execute(q.MARK_FAILED, {"collector": self.collector.name, "error": message})
        except psycopg.Error as exc:
            log.debug("could not record the failure of %s: %s", self.collector.name, exc)

    def _close(self) -> None:
        close_quietly(self.platform, self.ops)
        self.platform = self.ops = None


def _series_params(kind: str, series: dict[SeriesKey, float]) -> dict[str, list[Any]]:
    return {
        f"{kind}_metrics": [metric for metric, _ in series],
        f"{kind}_labels": [q.LABEL_SEPARATOR.join(labels) for _, labels in series],
        f"{kind}_values": list(series.values()),
    }
