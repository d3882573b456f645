"""What a transport receives: one queued notification with its incident."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Outgoing:
    id: int
    kind: str  # page | trigger | acknowledge | resolve | ack:<who> | resolved
    recipient: str
    payload: Mapping[str, Any]
    incident: Mapping[str, Any]  # the incident's row (api.incidents.store.get)
    previous: Mapping[str, Any] | None = None  # the transport's earlier answer, to update


class Transport(Protocol):
    name: str

    async def send(self, note: Outgoing) -> dict[str, Any]:
        """Deliver ``note``; what the outside system answered (kept for later updates), or
        raise :class:`api.incidents.transports.http.TransportError`."""
        ...
