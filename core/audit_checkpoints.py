"""Signed checkpoints of the audit chain: what the database's owner cannot take back.

The keyed chain (core.audit) stops anyone without the key from rewriting a row, but not
the owner from deleting the newest rows and setting the head back: what is left is a
shorter chain that verifies. A checkpoint names the head at a moment (its ``chain_seq``,
hash and the first keyed row) signed with the chain key, and is kept outside the database:
``opsdeck audit checkpoint --out FILE``, or the API every
``audit.checkpoint_interval_seconds`` at ``audit.checkpoint_path``. ``opsdeck audit verify
--against FILE`` then requires that row, with that hash, to still be in the chain: a removed
tail (the row gone, the head behind it) or a rewritten chain (another hash there) is named.
A row that retention removed since (recorded in the chain itself) cannot be compared and
is not a problem.

The file is JSON: ``seq``, ``hash`` (hex), ``keyed_from``, ``taken_at`` (ISO 8601) and
``signature``, the HMAC-SHA256 of the other four under the chain key.
"""

from __future__ import annotations

import hmac
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from core.audit import SEPARATOR, Verification, chain_head, chain_key, sign, verify
from core.database import connect
from core.queries import audit as sql

PURPOSE = "audit checkpoint v1"  # signed with the fields: never a chain link
FIELDS = ("seq", "hash", "keyed_from", "taken_at", "signature")


class BadCheckpoint(ValueError):
    """The file is not a checkpoint, or not one signed with this chain key."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: bytes
    keyed_from: int
    taken_at: datetime

    def message(self) -> bytes:
        parts = (PURPOSE, str(self.seq), self.hash.hex(), str(self.keyed_from))
        return SEPARATOR.join((*parts, self.taken_at.isoformat())).encode()

    def signed(self, key: bytes) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash.hex(),
            "keyed_from": self.keyed_from,
            "taken_at": self.taken_at.isoformat(),
            "signature": sign(key, self.message()).hex(),
        }


def take(conn: psycopg.Connection[Any]) -> Checkpoint:
    head = chain_head(conn)
    return Checkpoint(head.seq, head.hash, head.keyed_from, datetime.now(UTC))


def write(path: Path, checkpoint: Checkpoint) -> None:
    """Replace ``path`` at once (a reader never sees half a file), readable by us alone."""
    text = json.dumps(checkpoint.signed(chain_key()), indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _parsed(data: Any) -> tuple[Checkpoint, bytes]:
    if not isinstance(data, dict) or set(data) != set(FIELDS):
        raise BadCheckpoint(f"expected a JSON object with exactly {', '.join(FIELDS)}")
    try:
        checkpoint = Checkpoint(
            int(data["seq"]),
            bytes.fromhex(data["hash"]),
            int(data["keyed_from"]),
            datetime.fromisoformat(data["taken_at"]),
        )
        return checkpoint, bytes.fromhex(data["signature"])
    except (TypeError, ValueError) as exc:
        raise BadCheckpoint(f"a field is malformed: {exc}") from None


def read(path: Path) -> Checkpoint:
    """The checkpoint in ``path``, its signature checked against the chain key."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadCheckpoint(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise BadCheckpoint(f"{path} is not JSON") from None
    checkpoint, signature = _parsed(data)
    if not hmac.compare_digest(sign(chain_key(), checkpoint.message()), signature):
        raise BadCheckpoint(f"{path} is not signed with this chain key (audit.chain_key)")
    return checkpoint


def _missing(conn: psycopg.Connection[Any], checkpoint: Checkpoint, when: str) -> list[str]:
    retained = conn.execute(sql.LAST_RETENTION).fetchone()
    if retained is not None and retained[0] is not None and checkpoint.seq <= retained[0]:
        return []  # removed by retention, which the chain records
    head = chain_head(conn)
    if head.seq < checkpoint.seq:
        return [
            f"the chain ends at row {head.seq}, but the checkpoint of {when} names row "
            f"{checkpoint.seq}: rows {head.seq + 1}..{checkpoint.seq} were removed"
        ]
    return [f"row {checkpoint.seq}, named by the checkpoint of {when}, is missing"]


def problems(conn: psycopg.Connection[Any], checkpoint: Checkpoint) -> list[str]:
    """What the chain in ``conn`` lacks of what ``checkpoint`` saw."""
    when = checkpoint.taken_at.isoformat()
    found: list[str] = []
    if chain_head(conn).keyed_from != checkpoint.keyed_from:
        found.append(f"the keyed chain no longer starts at row {checkpoint.keyed_from}")
    if checkpoint.seq == 0:
        return found
    row = conn.execute(sql.ROW_HASH, {"seq": checkpoint.seq}).fetchone()
    if row is None:
        return found + _missing(conn, checkpoint, when)
    if bytes(row[0]) != checkpoint.hash:
        found.append(
            f"row {checkpoint.seq} differs from the checkpoint of {when}: the chain was rewritten"
        )
    return found


def verify_against(conn: psycopg.Connection[Any], checkpoint: Checkpoint) -> Verification:
    """:func:`core.audit.verify`, and the chain must still hold what ``checkpoint`` saw."""
    result = verify(conn)
    result.problems.extend(problems(conn, checkpoint))
    return result


def write_current(url: str, path: Path, application_name: str) -> int:
    """Take a checkpoint of the chain at ``url`` and write it to ``path``; its row."""
    with connect(url, application_name=application_name) as conn:
        checkpoint = take(conn)
    write(path, checkpoint)
    return checkpoint.seq
