"""The client's address, for everything downstream: rate limits, the audit, the logs, the
Paystack allow-list.

From a peer listed in ``api.trusted_proxies`` (a TLS proxy, a load balancer), the client is
the right-most hop of ``Forwarded`` (RFC 7239; else ``X-Forwarded-For``) that is not itself
a trusted proxy: each proxy appends the address it saw, so that hop was written by a proxy
we trust, and everything left of it is whatever the client chose to send. From any other
peer the headers are ignored. A hop that is not an address (``unknown``, an obfuscated
``_name``) leaves the peer as the client, never a client-chosen string.

The middleware replaces ``scope["client"]``; the peer's own address stays in
``scope[PEER]`` for what must be decided by the connection itself (trusted-proxy SSO).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

PEER = "opsdeck.peer"
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _address(text: str) -> Address | None:
    """An address from a hop: ``192.0.2.1``, ``192.0.2.1:4711``, ``[2001:db8::1]:4711``."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _forwarded_hops(value: str) -> list[str]:
    """The ``for=`` of each element of a ``Forwarded`` header, in order."""
    hops = []
    for element in value.split(","):
        for pair in element.split(";"):
            name, _, token = pair.strip().partition("=")
            if name.lower() == "for":
                hops.append(token)
    return hops


def _hops(headers: Sequence[tuple[bytes, bytes]]) -> list[str]:
    forwarded = [v.decode("latin-1") for k, v in headers if k == b"forwarded"]
    if forwarded:
        return _forwarded_hops(",".join(forwarded))
    chain = ",".join(v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for")
    return [hop for hop in chain.split(",") if hop.strip()]


def _trusted(address: Address | None, trusted: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in trusted)


def client_address(
    peer: str | None, headers: Sequence[tuple[bytes, bytes]], trusted: tuple[Network, ...]
) -> str | None:
    """The client's address: the peer's, unless the peer is a trusted proxy (module doc)."""
    if not trusted or not _trusted(_address(peer or ""), trusted):
        return peer
    for hop in reversed(_hops(headers)):
        address = _address(hop)
        if address is None:
            return peer
        if not _trusted(address, trusted):
            return str(address)
    return peer


class ClientAddressMiddleware:
    def __init__(self, app: ASGIApp, trusted_proxies: Iterable[str]) -> None:
        self.app = app
        self.trusted = networks(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer: Any = scope.get("client")
            scope[PEER] = peer
            host = client_address(peer[0] if peer else None, scope["headers"], self.trusted)
            if host is not None and (peer is None or host != peer[0]):
                scope["client"] = (host, 0)
        await self.app(scope, receive, send)


def peer_host(scope: Scope) -> str | None:
    """The address of the connection itself, whatever the forwarded headers say."""
    peer = scope.get(PEER, scope.get("client"))
    return str(peer[0]) if peer else None
