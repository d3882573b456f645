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

The chain, and why the key never reaches the database. Each row is linked to the one
before it by ``hash = HMAC-SHA256(key, prev_hash || canonical row)``, with the canonical
text of ``ops.audit_canonical`` (0002_ops_base). The key (``audit.chain_key``) lives in the
settings of the processes that write or verify the trail and nowhere else: not in a table,
not as a parameter of a database call (the server would log it with the statement), so
whoever can rewrite rows in the database (its owner, a superuser with the triggers off)
cannot recompute the links. The writer therefore computes the link here, in two steps in
the caller's transaction: ``ops.audit_chain_next`` (SECURITY DEFINER, 0016_database_roles)
locks the chain head and answers the next ``chain_seq``, the previous hash and the row's
canonical text (with the server's ``now()`` as its time); then the INSERT carries
``chain_seq``, ``prev_hash`` and ``hash``, and the ``audit_log_chain`` trigger refuses a row
that does not follow the head, stamps ``at`` with ``now()`` whatever was sent, and moves the
head. The head lock is held until the writer's transaction ends, so writers queue one
behind the other, the chain never forks, and a transaction that writes an audit row should
end soon after. A rolled-back row rolls the head back with it and leaves no gap. Other
triggers refuse UPDATE, TRUNCATE and any DELETE younger than 90 days.

The key is process-wide: every command sets it once at start (:func:`use_key`, from
``opsdeck``'s entry point); a writer without one refuses before touching the database
(:class:`ChainKeyMissing`). Rows from before the keyed chain (``keyed_from`` of the head)
were hashed with plain SHA-256 and are verified so.

The services' database role may only INSERT into the log and call those functions
(core.database_roles), so the app cannot rewrite its own trail. What the database owner
can still do, remove the newest rows and set the head back, the signed checkpoints of
:mod:`core.audit_checkpoints` catch.

Reading. :func:`verify` recomputes every link here in Python from the stored columns, so a
row altered behind the trigger's back breaks the chain, and so does a row removed anywhere
but at the retention end or the newest rows (those: ``verify --against`` a checkpoint).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from core.queries import audit as sql
from core.settings import AUDIT_CHAIN_KEY_MIN_CHARS, SettingsError, setting_label

log = logging.getLogger(__name__)
SEPARATOR = "\x1f"
KEY_SETTING = ("audit", "chain_key")


class ChainKeyMissing(SettingsError):
    """The audit chain cannot be written or verified without its key."""

    def __init__(self) -> None:
        super().__init__(
            setting_label(KEY_SETTING),
            "not set, and the audit trail is written and verified with it",
        )


class _ChainKey:
    """The process's chain key: set once at start, read by every writer and verifier."""

    value: bytes | None = None


def use_key(key: SecretStr | str | None) -> None:
    """Set (or, with None, forget) the key this process links and verifies the chain with."""
    if key is None:
        _ChainKey.value = None
        return
    text = key.get_secret_value() if isinstance(key, SecretStr) else key
    if len(text) < AUDIT_CHAIN_KEY_MIN_CHARS:
        raise SettingsError(
            setting_label(KEY_SETTING), f"shorter than {AUDIT_CHAIN_KEY_MIN_CHARS} characters"
        )
    _ChainKey.value = text.encode()


def chain_key() -> bytes:
    if _ChainKey.value is None:
        raise ChainKeyMissing
    return _ChainKey.value


def sign(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256: chain links and checkpoints alike."""
    return hmac.new(key, message, hashlib.sha256).digest()


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


def _linked(params: dict[str, Any], key: bytes, reserved: tuple[Any, ...] | None) -> dict[str, Any]:
    """The INSERT's parameters: the entry and the link to the head ``NEXT`` reserved."""
    assert reserved is not None, "ops.audit_chain_next answers one row"
    seq, _at, prev_hash, canonical_text = reserved
    prev = bytes(prev_hash)
    link = sign(key, prev + canonical_text.encode())
    return {**params, "chain_seq": int(seq), "prev_hash": prev, "hash": link}


def _chain_seq(row: tuple[Any, ...] | None) -> int:
    assert row is not None, "INSERT ... RETURNING answers one row"
    return int(row[0])


async def record(pool: AsyncConnectionPool, entry: AuditEntry) -> int:
    """Write ``entry`` on a connection of its own, committed before this returns."""
    chain_key()  # before a connection is taken: without the key nothing can be written
    async with pool.connection() as conn, conn.transaction():
        return await record_in(conn, entry)


async def record_in(conn: psycopg.AsyncConnection[Any], entry: AuditEntry) -> int:
    """Write ``entry`` in ``conn``'s transaction: it commits or rolls back with it."""
    key = chain_key()
    _joinable(conn)
    params = entry.params()
    reserved = await (await conn.execute(sql.NEXT, params)).fetchone()
    cursor = await conn.execute(sql.INSERT, _linked(params, key, reserved))
    return _chain_seq(await cursor.fetchone())


def record_in_sync(conn: psycopg.Connection[Any], entry: AuditEntry) -> int:
    """:func:`record_in` for a synchronous connection (the CLI and its threads)."""
    key = chain_key()
    _joinable(conn)
    params = entry.params()
    reserved = conn.execute(sql.NEXT, params).fetchone()
    return _chain_seq(conn.execute(sql.INSERT, _linked(params, key, reserved)).fetchone())


def canonical(row: tuple[Any, ...]) -> bytes:
    """The bytes ``ops.audit_canonical`` hashes, from a row of :data:`sql.CHAIN`."""
    seq, at, actor, role, action, ttype, tid, reason, outcome, request_id, ip, details = row[:12]
    moment = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = [str(seq), moment, actor, role or "", action, ttype or "", tid or ""]
    fields += [reason or "", outcome, request_id or "", ip or "", details]
    return SEPARATOR.join(fields).encode()


def link_of(key: bytes, keyed_from: int, seq: int, prev_hash: bytes, text: bytes) -> bytes:
    """The hash row ``seq`` must carry: keyed from ``keyed_from`` on, plain SHA-256 before."""
    if seq >= keyed_from:
        return sign(key, prev_hash + text)
    return hashlib.sha256(prev_hash + text).digest()


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: bytes
    keyed_from: int


def chain_head(conn: psycopg.Connection[Any]) -> ChainHead:
    row = conn.execute(sql.HEAD).fetchone()
    assert row is not None, "ops.audit_chain_head holds one row"
    return ChainHead(int(row[0]), bytes(row[1]), int(row[2]))


@dataclass
class Verification:
    rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Walk:
    """Verification state along the chain: the result and the last row seen."""

    key: bytes
    keyed_from: int
    retained_through: int | None
    result: Verification = field(default_factory=Verification)
    previous: tuple[int, bytes] | None = None

    def step(self, row: tuple[Any, ...]) -> None:
        seq, prev_hash, stored = int(row[0]), bytes(row[12]), bytes(row[13])
        self.result.rows += 1
        problems = self.result.problems
        if self.previous is None:
            retained = self.retained_through
            if seq != 1 and (retained is None or seq - 1 > retained):
                problems.append(f"rows before {seq} are missing (not removed by retention)")
        elif seq != self.previous[0] + 1:
            problems.append(f"rows {self.previous[0] + 1}..{seq - 1} are missing")
        elif prev_hash != self.previous[1]:
            problems.append(f"row {seq}: prev_hash does not match row {self.previous[0]}")
        if link_of(self.key, self.keyed_from, seq, prev_hash, canonical(row)) != stored:
            problems.append(f"row {seq}: content does not match its hash")
        self.previous = (seq, stored)


def verify(conn: psycopg.Connection[Any]) -> Verification:
    """Recompute the whole chain; ``problems`` names every row that does not add up."""
    key = chain_key()
    retained = conn.execute(sql.LAST_RETENTION).fetchone()
    head = chain_head(conn)
    walk = _Walk(key, head.keyed_from, retained[0] if retained else None)
    with conn.cursor(name="audit_verify") as cursor:
        cursor.execute(sql.CHAIN)
        for row in cursor:
            walk.step(row)
    result, last = walk.result, walk.previous
    if head.seq > 0:
        if last is None or last[0] != head.seq:
            result.problems.append(f"the newest rows up to {head.seq} are missing")
        elif last[1] != head.hash:
            result.problems.append("the newest row does not match the chain head")
    return result


def apply_retention(conn: psycopg.Connection[Any], days: int, actor: str) -> int:
    """Delete entries older than ``days`` (the database refuses anything younger than 90)
    and record the deletion in the chain itself, so :func:`verify` can tell it apart."""
    chain_key()  # the deletion is recorded: without the key, delete nothing
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
