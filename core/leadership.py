"""One leader among replicas: a PostgreSQL session advisory lock, an epoch, and a fence.

The KPI engine folds on one replica, one gateway worker serves the gateway's metrics, one
API process runs the escalation engine: each is a :class:`Leadership`, and its SQL is
``core/queries/leadership.py`` (the only place opsdeck asks for a session advisory lock).

Contract:

- **Who leads.** The replica whose lock connection holds the session advisory lock
  ``lock_key``. On winning it, it is elected: in one transaction it bumps the epoch of its
  name in ``ops.leaders`` and is leader under that epoch (:attr:`Leadership.epoch`).
- **The periodic check.** Every ``check_seconds`` a standby asks for the lock again, and
  the leader verifies, on the same session, that the session still holds it.
- **When leadership is lost.** When that check fails or says no (the backend was
  terminated, the connection broke, the database restarted), or when no check succeeded
  for ``2 * check_seconds + statement_timeout_seconds`` (a connection hanging on a
  network partition). Losing closes the connection, which releases the lock on the server
  side if it still held it; a standby then wins it at its next check. Stopping
  :meth:`Leadership.run` gives the lock up.
- **What a fence guarantees.** A leader that lost its lock may still have threads or tasks
  writing. Writers that matter call :meth:`Fence.check` with the epoch they were elected
  under, inside the transaction that writes: it takes the fence lock (``fence_key``)
  shared until that transaction ends, and only then reads the current epoch; an election
  takes the same lock exclusively. So an election waits for the fenced transactions in
  flight, and a fenced transaction that started after an election sees the new epoch and
  refuses (:class:`NotLeader`): no fenced write of an old epoch commits after a newer
  leader was elected. Writes that do not fence have no such guarantee; leadership alone
  only makes two leaders unlikely, never impossible.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from core.database import close_quietly, connect
from core.failures import FailureReporter, one_line, run_every
from core.queries import leadership as q

log = logging.getLogger(__name__)


class NotLeader(Exception):
    """Another replica was elected since the epoch a write was made under."""


@dataclass(frozen=True)
class Fence:
    """The fence of the leader lock ``name``: its epochs are fenced by advisory lock ``key``."""

    name: str
    key: int

    def check(self, conn: psycopg.Connection[Any], epoch: int) -> datetime:
        """Hold the fence until ``conn``'s transaction ends and check that ``epoch`` is
        still current; return the database's clock. Raises :class:`NotLeader`."""
        row = conn.execute(q.FENCE, {"name": self.name, "fence": self.key}).fetchone()
        return self._verdict(row, conn.info.transaction_status, epoch)

    async def check_async(self, conn: psycopg.AsyncConnection[Any], epoch: int) -> datetime:
        """:meth:`check` on an asyncio connection."""
        cursor = await conn.execute(q.FENCE, {"name": self.name, "fence": self.key})
        row = await cursor.fetchone()
        return self._verdict(row, conn.info.transaction_status, epoch)

    def _verdict(
        self, row: tuple[Any, ...] | None, status: TransactionStatus, epoch: int
    ) -> datetime:
        if status != TransactionStatus.INTRANS:
            # In autocommit the lock was released with the statement: it fenced nothing.
            raise ValueError(f"the {self.name} fence holds only inside a transaction")
        if row is None or row[0] is None or int(row[0]) != epoch:
            current = row[0] if row else None
            raise NotLeader(f"{self.name}: epoch {epoch} was superseded by {current}")
        now: datetime = row[1]
        return now


class Leadership:
    """One replica's side of the leader lock ``name`` (see the module's contract)."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        lock_key: int,
        what: str,
        application_name: str,
        fence_key: int | None = None,
        check_seconds: float = 1.0,
        statement_timeout_seconds: float = 5.0,
    ) -> None:
        if check_seconds <= 0 or statement_timeout_seconds <= 0:
            raise ValueError("check_seconds and statement_timeout_seconds must be positive")
        self.name = name
        self.what = what
        self.fence = Fence(name, fence_key) if fence_key is not None else None
        self.check_seconds = check_seconds
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._url = url
        self._key = lock_key
        self._application = application_name
        self._timeout = statement_timeout_seconds
        self._valid_for = 2 * check_seconds + statement_timeout_seconds
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._epoch: int | None = None
        self._confirmed = 0.0
        self._failures = FailureReporter(f"leader lock {name}", log)

    @property
    def epoch(self) -> int | None:
        """The epoch this replica leads under; None on a standby, and once no check has
        confirmed the lock for too long."""
        with self._lock:
            if self._epoch is None or time.monotonic() - self._confirmed > self._valid_for:
                return None
            return self._epoch

    @property
    def leading(self) -> bool:
        return self.epoch is not None

    def run(self, stop: threading.Event) -> None:
        """Contend, lead and check every ``check_seconds`` until ``stop``; then let go."""
        run_every(
            stop,
            self.check_seconds,
            self._step,
            self._failures,
            lambda exc: self._lose(one_line(exc)),
        )
        self._lose(None)

    async def run_async(self) -> None:
        """:meth:`run` on a thread of its own, for asyncio processes, until cancelled."""
        stop = threading.Event()
        running = asyncio.ensure_future(asyncio.to_thread(self.run, stop))
        try:
            await asyncio.shield(running)
        finally:
            stop.set()
            await running

    def _step(self) -> None:
        conn = self._connection()
        with self._lock:
            elected = self._epoch is not None
        if elected:
            row = conn.execute(q.HOLDS, {"key": self._key}).fetchone()
            if not (row and row[0]):
                self._lose("the session no longer holds the lock")
                return
            with self._lock:
                self._confirmed = time.monotonic()
            return
        row = conn.execute(q.TRY_LOCK, {"key": self._key}).fetchone()
        if row and row[0]:
            self._elect(conn)

    def _elect(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            if self.fence is not None:
                conn.execute(q.ELECT_LOCK, {"fence": self.fence.key})
            row = conn.execute(q.ELECT, {"name": self.name, "holder": self.holder}).fetchone()
        assert row is not None  # an upsert with RETURNING returns its row
        epoch = int(row[0])
        with self._lock:
            self._epoch = epoch
            self._confirmed = time.monotonic()
        log.info("leading %s (epoch %d)", self.what, epoch)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(
                self._url,
                application_name=self._application,
                autocommit=True,
                statement_timeout_seconds=self._timeout,
            )
        return self._conn

    def _lose(self, reason: str | None) -> None:
        with self._lock:
            was, self._epoch = self._epoch, None
        if was is not None and reason:
            log.error("lost leadership of %s (epoch %d): %s", self.what, was, reason)
        close_quietly(self._conn)  # releases the lock if the session still held it
        self._conn = None
