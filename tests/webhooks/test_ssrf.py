"""The SSRF guard refuses every disallowed address form, on every attempt; redirects are
never followed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.ssrf import Blocked, Guard
from tests.webhooks.harness import endpoint, send, sql, statuses, wait_for, workers
from tests.webhooks.servers import partner

pytestmark = pytest.mark.anyio

REFUSED = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),  # decimal IPv4
    ("http://0x7f000001/hook", "loopback"),  # hex IPv4
    ("http://0177.0.0.1/hook", "loopback"),  # octal IPv4
    ("http://127.1/hook", "loopback"),  # short IPv4
    ("http://localhost:8080/hook", "loopback"),  # a name resolving to loopback
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "IPv4 127.0.0.1 inside IPv6"),  # IPv4-mapped IPv6
    ("http://[::ffff:a9fe:a9fe]/latest", "IPv4 169.254.169.254 inside IPv6"),
    ("http://[2002:7f00:1::]/hook", "IPv4 127.0.0.1 inside IPv6"),  # 6to4
    ("http://[64:ff9b::a00:1]/hook", "IPv4 10.0.0.1 inside IPv6"),  # NAT64
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
    ("http://10.1.2.3/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("http://192.168.0.10/hook", "private"),
    ("http://[fc00::1]/hook", "private"),
    ("http://100.64.0.1/hook", "CGNAT"),
    ("http://169.254.10.10/hook", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://[ff02::1]/hook", "multicast"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://240.0.0.1/hook", "reserved"),
    ("ftp://example.com/hook", "scheme"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED)
async def test_refused(url: str, why: str) -> None:
    with pytest.raises(Blocked, match=why):
        await Guard(()).resolve(url)


async def test_public_addresses_pass_pinned() -> None:
    target = await Guard(()).resolve("https://93.184.216.34:8443/hooks?x=1")
    assert target.address == "93.184.216.34"
    assert target.pinned_url == "https://93.184.216.34:8443/hooks?x=1"
    assert target.host_header == "93.184.216.34:8443"


async def test_the_allow_list_is_explicit_and_narrow() -> None:
    guard = Guard(("127.0.0.1/32",))
    assert (await guard.resolve("http://localhost:9/x")).address == "127.0.0.1"
    with pytest.raises(Blocked, match="loopback"):
        await guard.resolve("http://127.0.0.2/x")
    with pytest.raises(Blocked, match="inside IPv6"):
        await guard.resolve("http://[::ffff:127.0.0.2]/x")


def test_a_blocked_endpoint_is_never_contacted(db_url: str, logs: Path) -> None:
    with partner() as server, workers(db_url, logs, OPSDECK_WEBHOOKS__SSRF_ALLOW="[]"):
        endpoint(db_url, f"http://localhost:{server.port}/ok")
        send(db_url, 3)
        wait_for("dead deliveries", lambda: statuses(db_url) == {"dead": 3}, 30)
        assert server.seen == []
        rows = sql(db_url, "SELECT error_class, error, attempt FROM ops.webhook_attempts")
        assert len(rows) == 3  # blocked is permanent: one attempt each
        assert {r[0] for r in rows} == {"blocked"}
        assert all("loopback" in r[1] for r in rows)


def test_a_redirect_to_a_private_address_is_not_followed(db_url: str, logs: Path) -> None:
    with partner() as server, partner(host="127.0.0.2") as private, workers(db_url, logs):
        server.redirect_to = private.url("/ok")
        endpoint(db_url, server.url("/redirect"))
        send(db_url, 1)
        wait_for("a dead delivery", lambda: statuses(db_url) == {"dead": 1}, 30)
        assert private.seen == []
        assert len(server.seen) == 4
