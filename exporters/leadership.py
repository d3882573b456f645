"""Which replica folds: a PostgreSQL advisory lock, plus an epoch that fences a lost leader.

The replica holding ``pg_try_advisory_lock(key)`` on its ops connection is the leader. On
election it bumps ``ops.kpi_leader.epoch`` under an exclusive fence lock; every fold takes
the fence lock shared, then re-reads the epoch (``ops.kpi_fence``), and commits only if it
is still the one it was elected with. A leader that lost its lock session (network, crash
of the connection) can therefore never commit after a new leader took over, even if its
threads are still running.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import psycopg

from core.database import connect
from core.failures import one_line
from exporters.queries import store as q

log = logging.getLogger(__name__)
APPLICATION = "opsdeck-exporter"


class Leadership:
    def __init__(self, ops_url: str, key: int, statement_timeout: float) -> None:
        self._url = ops_url
        self._key = key
        self._timeout = statement_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._epoch: int | None = None
        self._lock = threading.Lock()
        self.holder = f"{socket.gethostname()}:{threading.get_native_id()}"

    @property
    def epoch(self) -> int | None:
        """The epoch this replica leads under, or None on a standby."""
        with self._lock:
            return self._epoch

    def run(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        while not stop.is_set():
            try:
                self._step()
            except psycopg.Error as exc:
                self._lose(one_line(exc))
            stop.wait(poll_seconds)
        self._lose(None)

    def _step(self) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = connect(
                self._url,
                application_name=APPLICATION,
                autocommit=True,
                statement_timeout_seconds=self._timeout,
            )
        if self.epoch is not None:
            self._conn.execute(q.PING)  # the lock lives as long as this session does
            return
        row = self._conn.execute(q.TRY_LOCK, {"key": self._key}).fetchone()
        if row and row[0]:
            with self._conn.transaction():
                self._conn.execute(q.ELECT_LOCK, {"fence": q.FENCE_KEY})
                elected = self._conn.execute(q.ELECT, {"holder": self.holder}).fetchone()
            assert elected is not None
            with self._lock:
                self._epoch = int(elected[0])
            log.info("leading the KPI engine (epoch %d)", elected[0])

    def _lose(self, reason: str | None) -> None:
        with self._lock:
            was = self._epoch
            self._epoch = None
        if was is not None and reason:
            log.error("lost leadership (epoch %d): %s", was, reason)
        if self._conn is not None:
            try:
                self._conn.close()  # releases the advisory lock
            except psycopg.Error as exc:
                log.debug("closing the leadership connection: %s", exc)
            self._conn = None
