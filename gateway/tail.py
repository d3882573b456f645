"""Platform events into outbound messages, exactly once, by event time.

Worker step contract: this is the KPI engine's mechanism (``core/horizon.py``) pointed
at webhooks. Each step reads the events of one window ``[cursor, horizon)`` of event time
(``confirmed_at``, ``captured_at``, ``failed_at``, ``created_at``) from a REPEATABLE READ
snapshot of the platform, and writes their messages, their deliveries and the new cursor
in ONE ops transaction: the outbox guarantee. A crash before the commit loses nothing (the
window is read again); a window is never enqueued twice (the cursor moved with it, and
``source_key`` is unique besides). Every event before the commit horizon is already
committed and visible, so ids committing out of order or rows changing later never make
the tail miss one.

The first run starts at the current horizon: history older than the gateway is not sent
(``recover`` re-creates deliveries for messages that exist).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import psycopg

from core.application_names import GATEWAY_TAIL
from core.database import close_quietly, connect
from core.failures import FailureReporter
from core.horizon import Horizon
from core.settings import Settings
from gateway.outbox import Event, enqueue_many
from gateway.queries import tail as sql

log = logging.getLogger(__name__)


class PlatformTail:
    def __init__(self, settings: Settings, ops_url: str, platform_url: str) -> None:
        self.settings = settings
        self.ops_url = ops_url
        self.platform_url = platform_url
        self.horizon = Horizon(platform_url, settings.exporter)
        self.window = timedelta(seconds=settings.webhooks.tail_max_window_seconds)
        self.platform: psycopg.Connection[Any] | None = None
        self.ops: psycopg.Connection[Any] | None = None
        self.failures = FailureReporter("platform tail", log)
        self.enqueued = 0

    def run(self, stop: threading.Event) -> None:
        thread = threading.Thread(target=self.horizon.run, args=(stop,), name="tail-horizon")
        thread.start()
        seen: datetime | None = None
        try:
            while not stop.is_set():
                horizon = self.horizon.wait(seen, self.settings.exporter.fold_interval_seconds)
                if horizon is None:
                    continue
                try:
                    if self.step(horizon):
                        seen = horizon
                    self.failures.recovered()
                except psycopg.Error as exc:
                    self.failures.failed(exc)
                    self._close()
                    stop.wait(1.0)
        finally:
            thread.join()
            self._close()

    def step(self, horizon: datetime) -> bool:
        """Enqueue one window up to ``horizon``; True once the cursor has reached it."""
        platform, ops = self._connections()
        ops.execute(sql.START, {"source": sql.SOURCE, "horizon": horizon})
        ops.commit()
        row = ops.execute(sql.CURSOR, {"source": sql.SOURCE}).fetchone()
        ops.rollback()
        assert row is not None
        since: datetime = row[0]
        until = min(horizon, since + self.window)
        if until <= since:
            return True
        try:
            rows = platform.execute(sql.EVENTS, {"since": since, "until": until}).fetchall()
        finally:
            platform.rollback()
        locked = ops.execute(sql.LOCK, {"source": sql.SOURCE}).fetchone()
        if locked is None or locked[0] != since:
            ops.rollback()  # another worker is tailing this window, or has tailed it
            return False
        events = [
            Event(event_type, data, "platform", key, occurred_at)
            for event_type, key, occurred_at, data in rows
        ]
        created, _ = enqueue_many(ops, events)
        ops.execute(sql.ADVANCE, {"source": sql.SOURCE, "horizon": until})
        ops.commit()
        self.enqueued += created
        return until >= horizon

    def _connections(self) -> tuple[psycopg.Connection[Any], psycopg.Connection[Any]]:
        timeout = self.settings.exporter.statement_timeout_seconds
        if self.platform is None or self.platform.closed:
            self.platform = connect(
                self.platform_url, application_name=GATEWAY_TAIL, statement_timeout_seconds=timeout
            )
            self.platform.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self.platform.read_only = True
        if self.ops is None or self.ops.closed:
            self.ops = connect(
                self.ops_url, application_name=GATEWAY_TAIL, statement_timeout_seconds=timeout
            )
        return self.platform, self.ops

    def _close(self) -> None:
        close_quietly(self.platform, self.ops)
        self.platform = self.ops = None
