"""The incident timeline: every alert, escalation step, notification and action, in order."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from api.incidents.queries import incidents as sql

Conn = psycopg.AsyncConnection[Any]


async def add_event(
    conn: Conn,
    incident: int,
    kind: str,
    actor: str,
    at: datetime,
    detail: Mapping[str, Any] | None = None,
) -> None:
    params = {
        "incident": incident,
        "kind": kind,
        "actor": actor,
        "detail": Jsonb(dict(detail or {})),
        "at": at,
    }
    await conn.execute(sql.EVENT, params)


async def events(conn: Conn, incident: int) -> list[tuple[Any, ...]]:
    return list(await (await conn.execute(sql.TIMELINE, {"incident": incident})).fetchall())
