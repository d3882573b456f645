"""A Server-Sent Events reader over an httpx response, as a browser's EventSource parses the
stream: ``id``, ``event`` and ``data`` fields, one event per blank line, the last event id
kept for a reconnection. The benchmark's clients and the live lists' tests read with it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class ServerEvent:
    kind: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


async def server_events(response: httpx.Response) -> AsyncIterator[ServerEvent]:
    """Every event of the stream, until it ends."""
    kind, event_id = "message", None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield ServerEvent(kind, "\n".join(data), event_id)
            kind, data = "message", []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
