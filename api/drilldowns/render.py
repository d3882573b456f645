"""Rows (already masked) as JSON values, CSV and HTML cells."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from api.drilldowns.spec import Field


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, IPv4Address | IPv6Address):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value


def positions(fields: Sequence[Field], names: Sequence[str]) -> list[int]:
    index = {name: i for i, name in enumerate(names)}
    return [index[f.name] for f in fields]


def record(fields: Sequence[Field], names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    return {f.name: jsonable(row[i]) for f, i in zip(fields, positions(fields, names), strict=True)}


async def json_array(chunks: AsyncIterator[list[dict[str, Any]]]) -> AsyncIterator[bytes]:
    """A streamed JSON array of the records the chunks hold."""
    yield b"["
    first = True
    async for records in chunks:
        if not records:
            continue
        body = b",".join(json.dumps(r, separators=(",", ":")).encode() for r in records)
        yield body if first else b"," + body
        first = False
    yield b"]"


def display(value: Any) -> str:
    """A value as an HTML table cell shows it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)
