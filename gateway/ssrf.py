"""The SSRF guard of every delivery attempt: resolve the endpoint's host, refuse any address
that is not a public unicast one, and hand back the address to connect to (pinned), so a
second DNS answer cannot swap in another address between the check and the connection.

Refused: loopback, private (RFC 1918, ULA), link-local (and with it 169.254.169.254, the
cloud metadata address), CGNAT (100.64.0.0/10), multicast, reserved, unspecified, and any
IPv4 address carried inside IPv6 (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``,
6to4, Teredo, NAT64) that would be refused on its own. Hosts written as decimal or hex
integers (``2130706433``, ``0x7f000001``) are resolved by the system resolver like any name
and refused by the address they stand for. Only ``ssrf_allow`` networks (development and
tests) pass regardless.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
DEFAULT_PORTS = {"http": 80, "https": 443}


class Blocked(Exception):
    """The URL may not be called: a refused address or scheme; ``str()`` says why."""


class Unresolvable(Exception):
    """The host name does not resolve."""


@dataclass(frozen=True)
class Target:
    """A URL checked for one attempt, with the address it must be reached at."""

    scheme: str
    host: str  # as written in the URL (the Host header and the TLS server name)
    port: int
    address: str
    target: str  # path and query

    @property
    def host_header(self) -> str:
        bracketed = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS[self.scheme] == self.port
        return bracketed if default else f"{bracketed}:{self.port}"

    @property
    def pinned_url(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{address}:{self.port}{self.target}"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IPAddress) -> str | None:
    """Why a delivery may not connect to ``ip``, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            why = refusal(inner)
            return f"IPv4 {inner} inside IPv6: {why}" if why else None
    checks = (
        (ip in METADATA, "a cloud metadata address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT, "a CGNAT address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a public address"),
    )
    return next((why for refused, why in checks if refused), None)


class Guard:
    """Resolves and checks; answers are cached for ``cache_seconds`` (every attempt is still
    checked, and still connects to the checked address)."""

    def __init__(self, allow: Sequence[str], cache_seconds: float = 5.0) -> None:
        self.allow = tuple(ipaddress.ip_network(n, strict=False) for n in allow)
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, int], tuple[float, list[str]]] = {}

    def allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allow)

    def check(self, address: str) -> None:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        why = None if self.allowed(ip) else refusal(ip)
        if why:
            raise Blocked(f"{address} is {why}")

    async def resolve(self, url: str) -> Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise Blocked(f"scheme {scheme or 'none'!r} is not http or https")
        if not parts.hostname:
            raise Blocked("the URL has no host")
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise Blocked(f"bad port: {exc}") from None
        addresses = await self._addresses(parts.hostname, port)
        for address in addresses:
            self.check(address)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return Target(scheme, parts.hostname, port, addresses[0], target)

    async def _addresses(self, host: str, port: int) -> list[str]:
        key = (host, port)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (socket.gaierror, UnicodeError) as exc:
            raise Unresolvable(f"{host}: {exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise Unresolvable(f"{host}: no address")
        if self.cache_seconds > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self.cache_seconds, addresses)
        return addresses
