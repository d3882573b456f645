"""A live list's cursor as text: the change time before which every row was delivered, in
microseconds since the epoch (an SSE event id, an ``after`` parameter)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from api.problems import invalid

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
CURSOR_RE = re.compile(r"[0-9]{1,17}")


def encode(moment: datetime) -> str:
    return str((moment - EPOCH) // MICROSECOND)


def decode(name: str, text: str) -> datetime:
    """The cursor ``text`` that ``name`` carries, or a 400 naming it."""
    if not CURSOR_RE.fullmatch(text):
        raise invalid(name, "a cursor from a live event id or a poll")
    return EPOCH + int(text) * MICROSECOND
