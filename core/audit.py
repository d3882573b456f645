"""The audit trail: every sign-in, unmask, export, action and setting change.

Writing. Every row reaches ``ops.audit_log`` through one of two functions here, and the
INSERT lives only in :mod:`core.queries.audit`, so there is one way in to reason about:

- :func:`record` (``pool``, ``entry``): a connection and a transaction of its own,
  committed before it returns. For an event that stands alone (a sign-in, a sign-out, an
  export, a refused action): the row is written whatever the request does next.
- :func:`record_in` (``conn``, ``entry``), or :func:`record_in_sync` for a synchronous
  connection (the CLI's account changes, retention): inside the transaction the caller
  already has. The row commits or rolls back with that transaction, so a change and its
  audit row exist together or not at all, never one without the other. A connection in
  autocommit outside a transaction block is refused (:class:`NoTransaction`): there the row
  would commit alone, which is :func:`record`'s job, not a silent downgrade of this one.

All three return the row's ``chain_seq``.

The chain. The ``audit_log_chain`` trigger (0002_ops_base) numbers and hashes each row as
it is inserted: ``chain_seq = head + 1`` and ``hash = sha256(prev_hash || canonical row)``,
with the canonical text of ``ops.audit_canonical``, then moves ``ops.audit_chain_head``.
It locks the head row to do so, so writers queue one behind the other and the chain never
forks; the lock is held until the writer's transaction ends, which is why a transaction
that writes an audit row should end soon after it. A rolled-back row rolls the head back
with it and leaves no gap. Other triggers refuse UPDATE, TRUNCATE and any DELETE younger
than 90 days.

Reading. :func:`verify` recomputes every hash here in Python from the stored columns, so a
row altered behind the trigger's back (a superuser disabling it) breaks the chain, and so
does a row removed anywhere but at the retention end or the newest rows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from core.queries import audit as sql

log = logging.getLogger(__name__)
SEPARATOR = "\x1f"


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    actor_role: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    reason: str | None = None
    outcome: str = "ok"
    request_id: str | None = None
    ip_address: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        return {
            "actor": self.actor[:200],
            "actor_role": self.actor_role,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "reason": self.reason,
            "outcome": self.outcome,
            "request_id": self.request_id,
            "ip_address": self.ip_address,
            "details": Jsonb(dict(self.details)),
        }


class NoTransaction(ValueError):
    """:func:`record_in` was handed a connection with no transaction to join."""


def _joinable(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    # Without autocommit psycopg opens a transaction with the first statement, and the
    # caller's commit or rollback decides; in autocommit and outside conn.transaction()
    # the row would commit on its own.
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        raise NoTransaction(
            "record_in needs the caller's transaction (open conn.transaction() first); "
            "a row that stands alone is written with record(pool, entry)"
        )


def _chain_seq(row: tuple[Any, ...] | None) -> int:
    assert row is not None, "INSERT ... RETURNING answers one row"
    return int(row[0])


async def record(pool: AsyncConnectionPool, entry: AuditEntry) -> int:
    """Write ``entry`` on a connection of its own, committed before this returns."""
    async with pool.connection() as conn, conn.transaction():
        return await record_in(conn, entry)


async def record_in(conn: psycopg.AsyncConnection[Any], entry: AuditEntry) -> int:
    """Write ``entry`` in ``conn``'s transaction: it commits or rolls back with it."""
    _joinable(conn)
    cursor = await conn.execute(sql.INSERT, entry.params())
    return _chain_seq(await cursor.fetchone())


def record_in_sync(conn: psycopg.Connection[Any], entry: AuditEntry) -> int:
    """:func:`record_in` for a synchronous connection (the CLI and its threads)."""
    _joinable(conn)
    return _chain_seq(conn.execute(sql.INSERT, entry.params()).fetchone())


def canonical(row: tuple[Any, ...]) -> bytes:
    """The bytes ``ops.audit_canonical`` hashes, from a row of :data:`sql.CHAIN`."""
    seq, at, actor, role, action, ttype, tid, reason, outcome, request_id, ip, details = row[:12]
    moment = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = [str(seq), moment, actor, role or "", action, ttype or "", tid or ""]
    fields += [reason or "", outcome, request_id or "", ip or "", details]
    return SEPARATOR.join(fields).encode()


@dataclass
class Verification:
    rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_chain(
    rows: Iterable[tuple[Any, ...]], retained_through: int | None
) -> tuple[Verification, tuple[int, bytes] | None]:
    result = Verification()
    previous: tuple[int, bytes] | None = None
    for row in rows:
        seq, prev_hash, stored = row[0], bytes(row[12]), bytes(row[13])
        result.rows += 1
        if previous is None:
            if seq != 1 and (retained_through is None or seq - 1 > retained_through):
                result.problems.append(f"rows before {seq} are missing (not removed by retention)")
        elif seq != previous[0] + 1:
            result.problems.append(f"rows {previous[0] + 1}..{seq - 1} are missing")
        elif prev_hash != previous[1]:
            result.problems.append(f"row {seq}: prev_hash does not match row {previous[0]}")
        if hashlib.sha256(prev_hash + canonical(row)).digest() != stored:
            result.problems.append(f"row {seq}: content does not match its hash")
        previous = (seq, stored)
    return result, previous


def verify(conn: psycopg.Connection[Any]) -> Verification:
    """Recompute the whole chain; ``problems`` names every row that does not add up."""
    retained = conn.execute(sql.LAST_RETENTION).fetchone()
    head = conn.execute(sql.HEAD).fetchone()
    with conn.cursor(name="audit_verify") as cursor:
        cursor.execute(sql.CHAIN)
        result, last = _check_chain(cursor, retained[0] if retained else None)
    if head is not None and head[0] > 0:
        if last is None or last[0] != head[0]:
            result.problems.append(f"the newest rows up to {head[0]} are missing")
        elif last[1] != bytes(head[1]):
            result.problems.append("the newest row does not match the chain head")
    return result


def apply_retention(conn: psycopg.Connection[Any], days: int, actor: str) -> int:
    """Delete entries older than ``days`` (the trigger refuses anything younger than 90)
    and record the deletion in the chain itself, so :func:`verify` can tell it apart."""
    deleted, through = conn.execute(sql.RETENTION, {"days": days}).fetchone() or (0, None)
    if deleted:
        record_in_sync(
            conn,
            AuditEntry(
                actor=actor,
                action="audit.retention",
                details={"deleted": int(deleted), "through_seq": int(through or 0), "days": days},
            ),
        )
    conn.commit()
    return int(deleted)


def export_rows(
    conn: psycopg.Connection[Any], since: datetime, until: datetime
) -> Iterable[tuple[Any, ...]]:
    with conn.cursor(name="audit_export") as cursor:
        cursor.execute(sql.EXPORT, {"since": since, "until": until})
        yield from cursor


EXPORT_COLUMNS = (
    "chain_seq",
    "at",
    "actor",
    "actor_role",
    "action",
    "target_type",
    "target_id",
    "reason",
    "outcome",
    "request_id",
    "ip_address",
    "details",
    "hash",
)
