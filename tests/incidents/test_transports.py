"""The other transports against real protocols: email through a real SMTP server
(aiosmtpd), SMS through a local HTTPS Twilio fake, Opsgenie through a local HTTPS fake —
exact bodies and headers; 4xx permanent, 5xx and 429 retryable."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from api.incidents.transports.base import Outgoing
from api.incidents.transports.email import EmailTransport
from api.incidents.transports.http import HttpSeam, TransportError
from api.incidents.transports.opsgenie import OpsgenieTransport
from api.incidents.transports.sms import SmsTransport
from opsdeck.embedded import free_port
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

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.mails.append(envelope)
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
