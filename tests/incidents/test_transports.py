"""The transports against real protocols: email through a real SMTP server (aiosmtpd),
with STARTTLS and a certificate from a local CA that must be trusted; Slack through
slack_sdk and a local HTTPS fake that checks requests as Slack does; SMS through a local
HTTPS Twilio fake, Opsgenie through a local HTTPS fake — exact bodies and headers; 4xx and
Slack's ``ok: false`` permanent, 5xx and 429 retryable (a short 429 inside the send), a 429's
or 503's Retry-After read as seconds or an HTTP date."""

from __future__ import annotations

import base64
import email.utils
import math
import ssl
import time
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from api.incidents import context
from api.incidents.transports.base import Outgoing
from api.incidents.transports.email import EmailTransport
from api.incidents.transports.http import HttpSeam, TransportError
from api.incidents.transports.opsgenie import OpsgenieTransport
from api.incidents.transports.slack import SlackTransport, blocks
from api.incidents.transports.sms import SmsTransport
from opsdeck.embedded import free_port
from tests.incidents.conftest import faked_settings, incident_settings
from tests.incidents.fakes import Fake, Reply

pytestmark = pytest.mark.anyio
INCIDENT = {
    "id": 42,
    "title": "BookingApiDown: booking API down",
    "severity": "critical",
    "status": "triggered",
    "summary": "booking_api health checks fail",
    "runbook_url": "http://localhost:8000/runbooks/BookingApiDown.md",
    "alertname": "BookingApiDown",
    "team": "bookings",
    "dedup_key": "4f2c9a1b7d3e5f60",
    "services": ["bookings"],
}


def _note(kind: str, recipient: str) -> Outgoing:
    return Outgoing(1, kind, recipient, {}, INCIDENT)


class _Inbox:
    def __init__(self) -> None:
        self.mails: list[Envelope] = []
        self.encrypted: list[bool] = []  # per mail: did it arrive over TLS

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.mails.append(envelope)
        self.encrypted.append(session.ssl is not None)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    port = free_port(0)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def smtp_tls(tmp_path: Path) -> Iterator[tuple[_Inbox, int, Path]]:
    """An SMTP server that requires STARTTLS, with a certificate for 127.0.0.1 from a
    fresh CA; the CA's certificate is in the returned file (trusted by nobody else)."""
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    ca_file = tmp_path / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    inbox = _Inbox()
    port = free_port(0)
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True
    )
    controller.start()
    try:
        yield inbox, port, ca_file
    finally:
        controller.stop()


async def test_email_goes_through_a_real_smtp_server(smtp: tuple[_Inbox, int]) -> None:
    inbox, port = smtp
    transport = EmailTransport(
        "127.0.0.1", port, "opsdeck@example.com", "https://ops.example.com", starttls=False
    )
    await transport.send(_note("page", "ada@example.com"))
    (mail,) = inbox.mails
    assert mail.mail_from == "opsdeck@example.com"
    assert mail.rcpt_tos == ["ada@example.com"]
    content = mail.content or b""
    data = content if isinstance(content, bytes) else content.encode()
    message = message_from_bytes(data, policy=policy.default)
    assert message["Subject"] == "[critical] #42 BookingApiDown: booking API down"
    text = message.get_content()
    assert "Runbook: http://localhost:8000/runbooks/BookingApiDown.md" in text
    assert (
        "https://ops.example.com/actions/acknowledge?incident=42&alertname=BookingApiDown" in text
    )


async def test_starttls_refuses_a_certificate_from_an_untrusted_ca(
    smtp_tls: tuple[_Inbox, int, Path],
) -> None:
    inbox, port, _ = smtp_tls
    transport = EmailTransport("127.0.0.1", port, "o@example.com", "http://x", starttls=True)
    with pytest.raises(TransportError) as caught:
        await transport.send(_note("page", "ada@example.com"))
    assert caught.value.permanent is True  # the notification fails; it is not retried
    assert "certificate" in str(caught.value)
    assert inbox.mails == []


async def test_starttls_with_the_configured_ca_delivers(
    smtp_tls: tuple[_Inbox, int, Path], fake: tuple[Fake, httpx.AsyncClient]
) -> None:
    inbox, port, ca_file = smtp_tls
    settings = incident_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_ca_file=ca_file)
    email = context.transports(settings, fake[1])["email"]  # as the API builds it
    await email.send(_note("page", "ada@example.com"))
    assert [m.rcpt_tos for m in inbox.mails] == [["ada@example.com"]]
    assert inbox.encrypted == [True]


async def test_starttls_refused_by_the_client_is_refused_by_the_server(
    smtp_tls: tuple[_Inbox, int, Path],
) -> None:
    inbox, port, _ = smtp_tls
    transport = EmailTransport("127.0.0.1", port, "o@example.com", "http://x", starttls=False)
    with pytest.raises(TransportError, match="530") as caught:
        await transport.send(_note("page", "ada@example.com"))
    assert caught.value.permanent is True
    assert inbox.mails == []


async def test_email_to_a_closed_port_is_retryable() -> None:
    transport = EmailTransport("127.0.0.1", free_port(0), "o@example.com", "http://x", timeout=2)
    with pytest.raises(TransportError) as caught:
        await transport.send(_note("page", "ada@example.com"))
    assert caught.value.permanent is False


async def test_sms_speaks_twilios_api(fake: tuple[Fake, httpx.AsyncClient]) -> None:
    server, client = fake
    sms = SmsTransport(HttpSeam(client), server.base, "AC0123", "secret-token", "+15550009999")
    path = "/2010-04-01/Accounts/AC0123/Messages.json"
    server.on(path, Reply(201, {"sid": "SM1", "status": "queued"}))
    assert await sms.send(_note("page", "+15550100001")) == {"sid": "SM1", "status": "queued"}
    seen = [s for s in server.seen if s.path == path][-1]
    assert (
        seen.headers["authorization"]
        == "Basic " + base64.b64encode(b"AC0123:secret-token").decode()
    )
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    server.on(path, Reply(429, {"code": 20429}, {"Retry-After": "3"}), Reply(400, {"code": 21211}))
    with pytest.raises(TransportError) as busy:
        await sms.send(_note("page", "+15550100001"))
    assert (busy.value.permanent, busy.value.retry_after) == (False, 3.0)
    with pytest.raises(TransportError) as invalid:
        await sms.send(_note("page", "not-a-number"))
    assert invalid.value.permanent is True


def _http_date(seconds: int) -> tuple[float, str]:
    """A moment about ``seconds`` ahead (whole seconds, as HTTP dates have) and its date."""
    when = math.ceil(time.time()) + seconds
    return when, email.utils.formatdate(when, usegmt=True)


@pytest.mark.parametrize("status", [429, 503])
async def test_the_http_seam_reads_a_retry_after_date(
    fake: tuple[Fake, httpx.AsyncClient], status: int
) -> None:
    server, client = fake
    sms = SmsTransport(HttpSeam(client), server.base, "AC7", "t", "+15550009999")
    path = "/2010-04-01/Accounts/AC7/Messages.json"
    when, date = _http_date(90)
    server.on(path, Reply(status, {"code": 20429}, {"Retry-After": date}))
    with pytest.raises(TransportError) as busy:
        await sms.send(_note("page", "+15550100003"))
    assert busy.value.permanent is False
    assert busy.value.retry_after is not None
    assert when - time.time() - 1 <= busy.value.retry_after <= when - time.time() + 1
    server.on(path, Reply(500, {"code": 1}, {"Retry-After": "30"}))
    with pytest.raises(TransportError) as failed:
        await sms.send(_note("page", "+15550100003"))
    assert (failed.value.permanent, failed.value.retry_after) == (False, None)


async def test_sms_form_fields(fake: tuple[Fake, httpx.AsyncClient]) -> None:
    server, client = fake
    sms = SmsTransport(HttpSeam(client), server.base, "AC9", "t", "+15550009999")
    await sms.send(_note("page", "+15550100002"))
    raw = [s for s in server.seen if s.path.endswith("/AC9/Messages.json")][-1]
    assert raw.body is None  # form-encoded, not JSON
    assert parse_qs(raw.raw.decode()) == {
        "To": ["+15550100002"],
        "From": ["+15550009999"],
        "Body": [
            "[critical] #42 BookingApiDown: booking API down "
            "http://localhost:8000/runbooks/BookingApiDown.md"
        ],
    }


async def test_opsgenie_alert_api(fake: tuple[Fake, httpx.AsyncClient]) -> None:
    server, client = fake
    genie = OpsgenieTransport(HttpSeam(client), server.base, "genie-key")
    server.on("/v2/alerts", Reply(202, {"result": "Request will be processed", "requestId": "r1"}))
    await genie.send(_note("trigger", "api"))
    created = [s for s in server.seen if s.path == "/v2/alerts"][-1]
    assert created.headers["authorization"] == "GenieKey genie-key"
    assert created.body["alias"] == "4f2c9a1b7d3e5f60"
    assert created.body["priority"] == "P1"
    ack = "/v2/alerts/4f2c9a1b7d3e5f60/acknowledge?identifierType=alias"
    server.on(ack, Reply(202, {"result": "Request will be processed", "requestId": "r2"}))
    await genie.send(_note("acknowledge", "api"))
    assert [s.body for s in server.seen if s.path == ack] == [
        {"source": "opsdeck", "note": "acknowledge in opsdeck"}
    ]
    server.on("/v2/alerts", Reply(503, {"message": "unavailable"}))
    with pytest.raises(TransportError) as failed:
        await genie.send(_note("trigger", "api"))
    assert failed.value.permanent is False


SLACK_POST = "/api/chat.postMessage"
SLACK_UPDATE = "/api/chat.update"
TEXT = "[critical] BookingApiDown: booking API down (triggered)"


def _slack(server: Fake, token: str = "xoxb-test-token") -> SlackTransport:
    trust = ssl.create_default_context(cafile=server.ca_file)
    return SlackTransport(server.base + "/api", token, timeout=2, ssl_context=trust)


async def test_slack_posts_then_updates_with_slacks_exact_requests(
    fake: tuple[Fake, httpx.AsyncClient],
) -> None:
    server, _ = fake
    slack = _slack(server)
    posted = await slack.send(_note("page", "#ops-bookings"))
    assert posted == {"channel": "C0123", "ts": "1700000000.000100"}
    seen = [s for s in server.seen if s.path == SLACK_POST][-1]
    assert seen.headers["authorization"] == "Bearer xoxb-test-token"
    assert seen.headers["content-type"].startswith("application/json")
    assert seen.body == {"channel": "#ops-bookings", "text": TEXT, "blocks": blocks(INCIDENT)}
    acked = {**INCIDENT, "status": "acknowledged"}
    update = Outgoing(2, "ack:grace", "update", {}, acked, previous=posted)
    assert await slack.send(update) == posted
    assert server.bodies(SLACK_UPDATE)[-1] == {
        "channel": "C0123",
        "ts": "1700000000.000100",
        "text": "[critical] BookingApiDown: booking API down (acknowledged)",
        "blocks": blocks(acked, "Acknowledged by grace"),
    }


async def test_slack_from_settings_trusts_the_system_store(
    fake: tuple[Fake, httpx.AsyncClient],
) -> None:
    server, client = fake  # the fake's CA is the system's trust while it runs
    slack = context.transports(faked_settings(server), client)["slack"]
    assert await slack.send(_note("page", "#ops")) == {
        "channel": "C0123",
        "ts": "1700000000.000100",
    }


@pytest.mark.parametrize(
    ("error", "permanent"),
    [("channel_not_found", True), ("is_archived", True), ("internal_error", False)],
)
async def test_slack_ok_false_is_a_failure_with_slacks_error_code(
    fake: tuple[Fake, httpx.AsyncClient], error: str, permanent: bool
) -> None:
    server, _ = fake
    server.on(SLACK_POST, Reply(200, {"ok": False, "error": error}))
    with pytest.raises(TransportError, match=f"slack chat.postMessage: {error}$") as caught:
        await _slack(server).send(_note("page", "#gone"))
    assert caught.value.permanent is permanent


async def test_slack_refuses_a_bad_token(fake: tuple[Fake, httpx.AsyncClient]) -> None:
    server, _ = fake
    with pytest.raises(TransportError, match="invalid_auth") as caught:
        await _slack(server, token="not-a-bot-token").send(_note("page", "#ops"))
    assert caught.value.permanent is True


async def test_slack_waits_out_a_short_rate_limit(fake: tuple[Fake, httpx.AsyncClient]) -> None:
    server, _ = fake
    limited = Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
    server.on(SLACK_POST, limited)
    before = len(server.bodies(SLACK_POST))
    started = time.monotonic()
    posted = await _slack(server).send(_note("page", "#ops-rate"))
    assert posted["channel"] == "C0123"
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert server.bodies(SLACK_POST)[before:] == [server.bodies(SLACK_POST)[-1]] * 2


@pytest.mark.parametrize(
    ("as_date", "tolerance"), [(False, 0.0), (True, 1.0)], ids=["seconds", "http-date"]
)
async def test_slack_hands_a_long_rate_limit_to_the_notifier(
    fake: tuple[Fake, httpx.AsyncClient], as_date: bool, tolerance: float
) -> None:
    server, _ = fake
    when, date = _http_date(60)
    value = date if as_date else "30"
    server.on(SLACK_POST, Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": value}))
    before = len(server.bodies(SLACK_POST))
    with pytest.raises(TransportError, match="ratelimited") as caught:
        await _slack(server).send(_note("page", "#ops-rate"))
    expected = when - time.time() if as_date else 30.0
    assert caught.value.permanent is False
    assert caught.value.retry_after is not None
    assert abs(caught.value.retry_after - expected) <= tolerance
    assert len(server.bodies(SLACK_POST)) == before + 1  # not slept on here


async def test_slack_unreachable_is_retryable() -> None:
    slack = SlackTransport(f"https://127.0.0.1:{free_port(0)}/api", "xoxb-t", timeout=1)
    with pytest.raises(TransportError) as caught:
        await slack.send(_note("page", "#ops"))
    assert caught.value.permanent is False


async def test_slack_update_before_the_post_waits(fake: tuple[Fake, httpx.AsyncClient]) -> None:
    server, _ = fake
    note = replace(_note("ack:grace", "update"), previous=None)
    with pytest.raises(TransportError, match="not posted yet") as caught:
        await _slack(server).send(note)
    assert caught.value.permanent is False


async def test_slack_waits_out_a_short_rate_limit_given_as_a_date(
    fake: tuple[Fake, httpx.AsyncClient],
) -> None:
    server, _ = fake
    when, date = _http_date(2)
    server.on(SLACK_POST, Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": date}))
    before = len(server.bodies(SLACK_POST))
    posted = await _slack(server).send(_note("page", "#ops-rate-date"))
    assert posted["channel"] == "C0123"
    retried = [s for s in server.seen if s.path == SLACK_POST][-1]
    assert len(server.bodies(SLACK_POST)) == before + 2
    assert time.time() >= when - 0.05  # slept until the date, inside the send
    assert retried.body["channel"] == "#ops-rate-date"
