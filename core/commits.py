"""Whether any transaction but opsdeck's own ended between two reads of the platform.

A ``pg_current_snapshot()`` says which transactions a read sees: every id below ``xmax``
but those in ``xip`` (still running). The transactions that ended between two reads are
those that ran at the first (``xip``) or started after it (at or above its ``xmax``), and
run no longer at the second. If every one of them is opsdeck's own (registered with
:meth:`OwnTransactions.add` before its commit), the platform committed nothing in between:
the second read sees exactly the rows the first saw. An aborted transaction counts as an
ended one, which costs a needless fold at worst; never the other way round.

Transaction ids are cluster-wide: a write to any database of the server ends a
transaction, so only ids from the same server may be left out as opsdeck's own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class XidSnapshot:
    xmax: int
    running: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> XidSnapshot:
        """A ``pg_snapshot`` in its text form ``xmin:xmax:xip,...``."""
        _xmin, xmax, xip = text.split(":")
        return cls(int(xmax), frozenset(int(x) for x in xip.split(",") if x))

    def ended_since(self, earlier: XidSnapshot, own: frozenset[int]) -> bool:
        """Whether a transaction not in ``own`` ended between ``earlier`` and this one."""
        if any(x not in self.running and x not in own for x in earlier.running):
            return True
        started = self.xmax - earlier.xmax
        if started > len(self.running) + len(own):
            return True  # more new ids than running and own ones together
        return any(x not in self.running and x not in own for x in range(earlier.xmax, self.xmax))


class OwnTransactions:
    """Ids of opsdeck's own writing transactions, until no later comparison needs them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[int] = set()

    def add(self, xid: int) -> None:
        with self._lock:
            self._ids.add(xid)

    def compare(self, earlier: XidSnapshot | None, now: XidSnapshot) -> bool:
        """Whether another's transaction ended between ``earlier`` and ``now`` (True when
        there is no earlier read); forgets the ids that ended before ``now``."""
        with self._lock:
            own = frozenset(self._ids)
            # Only ids running at ``now`` or started after it can end after it.
            self._ids = {x for x in self._ids if x in now.running or x >= now.xmax}
        return earlier is None or now.ended_since(earlier, own)
