"""Limits that hold against one address, one principal and the proxy in front.

Everything runs for real: ``opsdeck api`` served over HTTP on loopback, with two days of
simulated history in a real PostgreSQL and its limits in a real Redis. The API is told that
127.0.0.1 is its TLS proxy (``api.trusted_proxies``), so requests from there name their
client in ``X-Forwarded-For``; 127.0.0.2, also loopback, is a client connecting directly.

The attacks, each refused:

- 2,000 badly signed inbound webhooks from one address, 64 at a time: a bounded number of
  rejection rows (a hash and a short sample each), the rest 429 before any database work,
  and sign-in answers throughout;
- twelve exports whose client never reads, from one API key: the pages and ``/readyz``
  still answer, the exports past the key's slots get 429, and the stalled ones are cut at
  the deadline and give their connections back;
- behind the proxy, 50 failed sign-ins from one client address, or 10 for ``admin``, lock
  nobody else out; a direct client cannot pick its address with ``X-Forwarded-For``;
- the Paystack allow-list judges the client's address, not the proxy's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pyotp
import pytest
import redis

from api.middleware.client_address import client_address, networks
from api.workers import prune_rejections
from core.psp_webhooks import paystack_charge_event, paystack_signature, stripe_header
from core.settings import WebhookSettings
from tests.api.conftest import (
    PASSWORD,
    PAYSTACK_TEST_SECRET,
    SECRET,
    STRIPE_TEST_SECRET,
    api_settings,
    running,
    serving,
)
from tests.authenticator import printed_secret
from tests.conftest import opsdeck_env, run_opsdeck, scratch_database
from tests.webhooks.gateway import charge, stripe_headers

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
DIRECT_PEER = "127.0.0.2"  # loopback, but not the trusted proxy
PAYSTACK_ADDRESS = "52.31.139.75"
EXPORT_DEADLINE_SECONDS = 12.0
REJECTIONS_PER_ADDRESS = WebhookSettings().inbound_rejections_per_address
SAMPLE_BYTES = WebhookSettings().rejected_sample_bytes
ANSWER_WITHIN_SECONDS = 8.0  # a page while the attack runs, on a busy 2-core machine
EXPORT = "/api/v1/api-logs/export?from=now-30d"


@dataclass(frozen=True)
class Stack:
    base: str
    db_url: str
    env: dict[str, str]
    totp: dict[str, str]

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def client(self, forwarded_for: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30, **kwargs)

    def sign_in(self, client: httpx.Client, username: str, password: str = PASSWORD) -> int:
        """Through the real form (CSRF token, TOTP code when the user has one)."""
        page = client.get("/login")
        token = CSRF_RE.search(page.text)
        if token is None:
            return page.status_code
        code = pyotp.TOTP(self.totp[username]).now() if username in self.totp else ""
        form = {"username": username, "password": password, "code": code, "csrf_token": token[1]}
        return client.post("/login", data=form).status_code


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = run_opsdeck(*args, env=env, timeout=120, stdin=stdin)
    assert done.returncode == 0, f"opsdeck {' '.join(args)}: {done.stderr}"
    return done.stdout


def _users(env: dict[str, str]) -> tuple[dict[str, str], str]:
    """The stack's users (their TOTP secrets) and a super admin's API key."""
    secrets: dict[str, str] = {}
    for name, role in (("alice", "viewer"), ("bob", "viewer"), ("admin", "super_admin")):
        flags = ["--totp"] if role == "super_admin" else []
        out = _cli(
            env, "users", "add", name, "--role", role, "--password-stdin", *flags, stdin=PASSWORD
        )
        if secret := printed_secret(out):
            secrets[name] = secret
    key = _cli(
        env, "api-keys", "create", "--user", "admin", "--name", "exports", "--role", "super_admin"
    )
    return secrets, key.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def stack(
    admin_url: str, history_template: str, services: dict[str, str], tmp_path_factory: Any
) -> Iterator[tuple[Stack, str]]:
    store = redis.Redis.from_url(services["redis"])
    store.flushdb()
    store.close()
    with scratch_database(admin_url, history_template) as db_url:
        env = opsdeck_env(
            DATABASE_URL=db_url,
            REDIS_URL=services["redis"],
            OPSDECK_API__SECRET_KEY=SECRET,
            OPSDECK_API__TRUSTED_PROXIES='["127.0.0.1/32"]',
            OPSDECK_API__EXPORT_DEADLINE_SECONDS=str(EXPORT_DEADLINE_SECONDS),
            OPSDECK_API__REQUESTS_PER_MINUTE="100000",
            OPSDECK_WEBHOOKS__STRIPE_SECRETS=f'["{STRIPE_TEST_SECRET}"]',
            OPSDECK_WEBHOOKS__PAYSTACK_SECRETS=f'["{PAYSTACK_TEST_SECRET}"]',
            OPSDECK_WEBHOOKS__PAYSTACK_ALLOWED_NETWORKS=f'["{PAYSTACK_ADDRESS}/32"]',
            OPSDECK_INCIDENTS__ENGINE_ENABLED="false",
        )
        totp, key = _users(env)
        log = tmp_path_factory.mktemp("limits") / "api.log"
        with serving(env, log) as base:
            yield Stack(base, db_url, env, totp), key


# -- the client address ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        ("127.0.0.1", [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.9")], "203.0.113.9"),
        ("127.0.0.1", [(b"x-forwarded-for", b"203.0.113.9, 10.0.0.7")], "203.0.113.9"),
        ("127.0.0.1", [(b"forwarded", b'for=6.6.6.6, for="[2001:db8::1]:4711"')], "2001:db8::1"),
        ("127.0.0.1", [(b"x-forwarded-for", b"6.6.6.6, unknown")], "127.0.0.1"),
        ("127.0.0.1", [], "127.0.0.1"),
        ("192.0.2.50", [(b"x-forwarded-for", b"203.0.113.9")], "192.0.2.50"),
    ],
)
def test_the_client_is_the_right_most_hop_no_trusted_proxy_wrote(
    peer: str, headers: list[tuple[bytes, bytes]], client: str
) -> None:
    trusted = networks(["127.0.0.1/32", "10.0.0.0/8"])
    assert client_address(peer, headers, trusted) == client


# -- the inbound flood ----------------------------------------------------------------------


FLOOD_BODY = json.dumps({"id": "evt_flood", "type": "charge.succeeded", "pad": "x" * 900})


async def _flood(base: str, total: int, parallel: int) -> list[tuple[int, str | None]]:
    """Badly signed Stripe webhooks from one client: status and Retry-After of each (status
    0: the connection failed)."""
    body = FLOOD_BODY.encode()
    headers = {
        "content-type": "application/json",
        "stripe-signature": stripe_header(["whsec_not_the_secret"], body, int(time.time())),
        "x-forwarded-for": "198.51.100.66",
    }
    gate = asyncio.Semaphore(parallel)
    limits = httpx.Limits(max_connections=parallel)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one() -> tuple[int, str | None]:
            async with gate:
                try:
                    answer = await client.post(
                        "/webhooks/inbound/stripe", content=body, headers=headers
                    )
                except httpx.TransportError:
                    return 0, None
                return answer.status_code, answer.headers.get("retry-after")

        return await asyncio.gather(*(one() for _ in range(total)))


async def _sign_ins_meanwhile(stack: Stack, flood: asyncio.Task[Any]) -> list[tuple[int, float]]:
    """Sign-ins from other clients while the flood runs: status and seconds taken each. Each
    comes from an address of its own: one address may try only so often, and a long flood
    outlasts that many sign-ins."""
    timings: list[tuple[int, float]] = []
    while not flood.done():
        started = time.monotonic()
        with stack.client(f"192.0.2.{len(timings) % 250 + 1}") as browser:
            try:
                status = await asyncio.to_thread(stack.sign_in, browser, "alice")
            except httpx.TransportError:
                status = 0
        timings.append((status, time.monotonic() - started))
        await asyncio.sleep(0.2)
    return timings


@pytest.mark.anyio
async def test_an_inbound_flood_writes_bounded_rows_and_sign_in_still_answers(
    stack: tuple[Stack, str],
) -> None:
    api, _ = stack
    before = api.sql("SELECT count(*) FROM ops.webhook_inbound_rejections")[0][0]
    flood = asyncio.create_task(_flood(api.base, 2000, 64))
    timings = await _sign_ins_meanwhile(api, flood)
    answers = await flood
    statuses = [status for status, _ in answers]
    rows = api.sql("SELECT count(*) FROM ops.webhook_inbound_rejections")[0][0] - before
    # The limit holds per fixed window: a flood across a window's end meets two of them.
    assert rows <= 2 * REJECTIONS_PER_ADDRESS, f"{rows} rejection rows for one address"
    counted = Counter(statuses)
    assert counted[400] == rows, counted
    # Everything else was held off. On a busy machine a few of the flood's own connections
    # may fail before an answer (0); a server error would be counted as what it is.
    assert counted[429] + counted[0] == 2000 - rows, counted
    assert counted[0] <= 2000 // 20, counted
    assert all(int(wait or 0) >= 1 for status, wait in answers if status == 429)
    assert timings
    assert all(status == 303 for status, _ in timings), timings
    assert max(seconds for _, seconds in timings) < ANSWER_WITHIN_SECONDS, timings
    body = FLOOD_BODY.encode()
    stored = api.sql(
        "SELECT body_sha256, octet_length(body), host(remote_addr) "
        "FROM ops.webhook_inbound_rejections ORDER BY id DESC LIMIT 1"
    )
    assert stored == [(hashlib.sha256(body).digest(), SAMPLE_BYTES, "198.51.100.66")]
    genuine = charge("evt_after_the_flood", "ch_after_the_flood", 4200)
    headers = {**stripe_headers(genuine), "x-forwarded-for": "198.51.100.66"}
    with api.client() as psp:  # the same address's correctly signed events still go through
        answer = psp.post("/webhooks/inbound/stripe", content=genuine, headers=headers)
    assert answer.status_code == 200, answer.text


@pytest.mark.anyio
async def test_rejections_past_retention_are_pruned(db_url: str, redis_url: str) -> None:
    """The API's retention loop removes rejections older than webhooks.retention_days."""
    insert = (
        "INSERT INTO ops.webhook_inbound_rejections (provider, reason, detail, status_code, "
        "headers, body, body_bytes, received_at) "
        "VALUES ('stripe', %s, '', 400, '{}', '', 0, now() - %s * interval '1 day')"
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(insert, ("old", 31))
        conn.execute(insert, ("young", 29))
    async with running(api_settings(db_url, redis_url)) as harness:
        reasons = "SELECT reason FROM ops.webhook_inbound_rejections ORDER BY reason"
        for _ in range(100):
            if harness.sql(reasons) == [("young",)]:
                break
            await asyncio.sleep(0.1)
        assert harness.sql(reasons) == [("young",)]
        assert await prune_rejections(harness.runtime) == 0


# -- exports nobody reads -------------------------------------------------------------------


def _stalled_export(base: str, token: str) -> socket.socket:
    """An export request whose client then reads nothing (a tiny receive window)."""
    parts = urlsplit(base)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((parts.hostname, parts.port))
    request = (
        f"GET {EXPORT} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    sock.sendall(request.encode())
    return sock


def _status(sock: socket.socket) -> int:
    head = b""
    while len(head) < 12:
        head += sock.recv(12 - len(head))
    return int(head[9:12])


def _drain(sock: socket.socket) -> bytes:
    """Everything the server sent, up to its closing the connection."""
    received = bytearray()
    while chunk := sock.recv(1 << 20):
        received += chunk
    return bytes(received)


def _export_sessions(api: Stack) -> list[tuple[Any, ...]]:
    return api.sql(
        "SELECT state FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'opsdeck-api-export' AND state <> 'idle'"
    )


@pytest.fixture
def stalled(stack: tuple[Stack, str]) -> Iterator[list[socket.socket]]:
    api, key = stack
    sockets = []
    try:
        for _ in range(12):
            sockets.append(_stalled_export(api.base, key))
            time.sleep(0.05)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def test_exports_nobody_reads_leave_the_pages_and_readyz_answering(
    stack: tuple[Stack, str], stalled: list[socket.socket]
) -> None:
    api, key = stack
    opened = time.monotonic()
    statuses = [_status(sock) for sock in stalled]
    assert statuses.count(200) == 2, statuses
    assert statuses.count(429) == 10, statuses
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=api.base, headers=headers, timeout=ANSWER_WITHIN_SECONDS) as pages:
        for path in ("/api/v1/payments", "/api/v1/bookings", "/api/v1/api-logs", "/readyz"):
            assert pages.get(path).status_code == 200, path
        assert pages.get(EXPORT).status_code == 429  # both of the key's slots are taken
    running_exports = [s for s, status in zip(stalled, statuses, strict=True) if status == 200]
    assert len(_export_sessions(api)) == 2
    time.sleep(max(0.0, opened + EXPORT_DEADLINE_SECONDS + 1 - time.monotonic()))
    for sock in running_exports:
        sent = _drain(sock)  # the server closes it at the deadline
        assert not sent.endswith(b"0\r\n\r\n"), "the export finished: nothing was stalled"
    assert time.monotonic() - opened < EXPORT_DEADLINE_SECONDS + 20
    for _ in range(50):
        if not _export_sessions(api):
            break
        time.sleep(0.2)
    assert _export_sessions(api) == []  # their connections are back in the pool
    with (
        httpx.Client(base_url=api.base, headers=headers, timeout=30) as client,
        client.stream("GET", EXPORT) as again,
    ):
        assert again.status_code == 200  # and their slots are free again


# -- sign-in behind the proxy ---------------------------------------------------------------


def test_failed_sign_ins_behind_the_proxy_lock_out_only_their_own_address(
    stack: tuple[Stack, str],
) -> None:
    api, _ = stack
    with api.client("203.0.113.10") as attacker:  # a password spray over many user names
        spray = [api.sign_in(attacker, f"guess-{n}", "wrong password") for n in range(50)]
    with api.client("203.0.113.20") as someone_else:
        assert api.sign_in(someone_else, "bob") == 303
    with api.client("203.0.113.30") as attacker:
        guesses = [api.sign_in(attacker, "admin", "wrong password") for _ in range(10)]
    with api.client("203.0.113.40") as the_admin:
        assert api.sign_in(the_admin, "admin") == 303
    # ... while the attacker's own address is slowed down
    assert spray[:20] == [401] * 20, spray
    assert spray.count(429) >= 20, spray
    assert guesses[:5] == [401] * 5, guesses
    assert 429 in guesses, guesses
    failed_from = api.sql(
        "SELECT DISTINCT host(ip_address) FROM ops.audit_log "
        "WHERE action = 'sign_in' AND outcome = 'failed' "
        "AND (actor = 'admin' OR actor LIKE 'guess-%')"
    )
    assert sorted(failed_from) == [("203.0.113.10",), ("203.0.113.30",)]


def test_a_direct_client_cannot_choose_its_address(stack: tuple[Stack, str]) -> None:
    """From a peer that is not a trusted proxy, X-Forwarded-For names nobody: a new
    address in it each time does not escape the backoff of the peer's own address."""
    api, _ = stack
    answers = []
    for n in range(30):
        direct = httpx.HTTPTransport(local_address=DIRECT_PEER)
        with api.client(f"203.0.113.{100 + n}", transport=direct) as client:
            answers.append(api.sign_in(client, "carol", "wrong password"))
    assert answers[:5] == [401] * 5, answers
    assert answers.count(429) >= 15, answers
    failed_from = api.sql(
        "SELECT DISTINCT host(ip_address) FROM ops.audit_log "
        "WHERE action = 'sign_in' AND actor = 'carol'"
    )
    assert failed_from == [(DIRECT_PEER,)]


# -- the Paystack allow-list ----------------------------------------------------------------


def test_the_paystack_allow_list_judges_the_client_behind_the_proxy(
    stack: tuple[Stack, str],
) -> None:
    api, _ = stack
    event = paystack_charge_event(
        7, "ps_limits_7", 5000, "NGN", succeeded=True, livemode=False, at=datetime.now(UTC)
    )
    body = json.dumps(event).encode()
    headers = {
        "content-type": "application/json",
        "x-paystack-signature": paystack_signature(PAYSTACK_TEST_SECRET, body),
    }
    with api.client(PAYSTACK_ADDRESS) as paystack, api.client("203.0.113.77") as stranger:
        accepted = paystack.post("/webhooks/inbound/paystack", content=body, headers=headers)
        refused = stranger.post("/webhooks/inbound/paystack", content=body, headers=headers)
    assert accepted.status_code == 200, accepted.text
    assert refused.status_code == 403, refused.text


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"
