"""Finance tickets: opened from a payment-mismatch row, a ticket names its transaction,
tells finance (a real SMTP server, and Slack's API through a local HTTPS fake), and moves
through its statuses and owners on its page, each change confirmed, idempotent, audited."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from api.rbac import Role
from core.settings import Settings
from opsdeck.embedded import free_port
from tests.api.conftest import Harness, api_settings, running
from tests.incidents.actions_client import click, confirmation, submit
from tests.incidents.conftest import faked_settings
from tests.incidents.fakes import Fake, https_fake

pytestmark = pytest.mark.anyio
TRANSACTION = 4242


class Inbox:
    def __init__(self) -> None:
        self.mails: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.mails.append(envelope)
        return "250 OK"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port(0)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def slack() -> Iterator[Fake]:
    with https_fake() as (server, _):
        yield server


@pytest.fixture(scope="module")
async def finance_api(
    api_db: str, api_redis: str, alertmanager_url: str, smtp: tuple[Inbox, int], slack: Fake
) -> AsyncIterator[Harness]:
    incidents = faked_settings(slack, smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_starttls=False)
    base: Settings = api_settings(api_db, api_redis, alertmanager_url)
    async with running(base.model_copy(update={"incidents": incidents})) as harness:
        yield harness


def _mail_text(envelope: Envelope) -> tuple[str, str]:
    content = envelope.content or b""
    data = content if isinstance(content, bytes) else content.encode()
    message = message_from_bytes(data, policy=policy.default)
    return str(message["Subject"]), str(message.get_content())


async def _open_from_mismatch_row(api: Harness) -> int:
    async with await api.session_client(Role.FINANCE) as finance:
        path = f"/actions/open-finance-ticket?transaction={TRANSACTION}&source=grafana"
        done = await click(finance, path, "PSP amount differs from the ledger")
    assert done.status_code == 200, done.text[:300]
    (ticket,) = api.sql("SELECT max(id) FROM ops.finance_tickets")[0]
    return int(ticket)


async def test_a_ticket_names_its_transaction_and_tells_finance(
    finance_api: Harness, smtp: tuple[Inbox, int], slack: Fake
) -> None:
    inbox, _ = smtp
    ticket = await _open_from_mismatch_row(finance_api)
    row = finance_api.sql(
        "SELECT transaction_id, status, source, opened_by FROM ops.finance_tickets WHERE id = %s",
        (ticket,),
    )
    assert row == [(TRANSACTION, "open", "grafana", "finance-user")]

    (mail,) = [m for m in inbox.mails if m.rcpt_tos == ["finance@example.com"]]
    subject, text = _mail_text(mail)
    assert subject == f"Finance ticket #{ticket} opened by finance-user"
    assert f"Transaction: http://localhost:8000/payments/{TRANSACTION}" in text
    assert f"Ticket: http://localhost:8000/finance-tickets/{ticket}" in text
    (posted,) = [b for b in slack.bodies("/api/chat.postMessage") if f"#{ticket}" in b["text"]]
    assert posted["channel"] == "#ops-finance"

    async with await finance_api.session_client(Role.FINANCE) as finance:
        page = await finance.get(f"/finance-tickets/{ticket}", headers={"Accept": "text/html"})
        listed = await finance.get(f"/api/v1/finance-tickets?transaction={TRANSACTION}")
    assert f'<a href="/payments/{TRANSACTION}">{TRANSACTION}</a>' in page.text
    kinds = {
        (r[0], r[1])
        for r in finance_api.sql(
            "SELECT kind, actor FROM ops.finance_ticket_events WHERE ticket_id = %s", (ticket,)
        )
    }
    assert kinds == {("opened", "finance-user"), ("notified", "email"), ("notified", "slack")}
    assert [r["id"] for r in listed.json()["data"]] == [ticket]


async def test_a_ticket_moves_through_its_statuses_on_its_page(finance_api: Harness) -> None:
    ticket = await _open_from_mismatch_row(finance_api)
    page_path = f"/finance-tickets/{ticket}"
    async with await finance_api.session_client(Role.FINANCE) as finance:
        page = await finance.get(page_path, headers={"Accept": "text/html"})
        assert f'href="/finance-tickets/{ticket}/status?status=in_progress"' in page.text
        for status in ("in_progress", "resolved"):
            moved = await click(finance, f"{page_path}/status?status={status}", "working it")
            assert moved.status_code == 200, moved.text[:300]
            assert f'href="{page_path}"' in moved.text
        skipped = await finance.get(f"{page_path}/status?status=in_progress")
        assert skipped.status_code == 409, skipped.text[:300]

        _, csrf, key = await confirmation(finance, f"{page_path}/owner?owner=grace")
        form = {"csrf_token": csrf, "idempotency_key": key, "reason": "grace owns payouts"}
        html = {"Accept": "text/html"}
        owned = await finance.post(
            f"{page_path}/owner", data={**form, "owner": "grace"}, headers=html
        )
        assert owned.status_code == 200, owned.text[:300]
        replay = await finance.post(
            f"{page_path}/owner", data={**form, "owner": "grace"}, headers=html
        )
        assert 'data-replayed="true"' in replay.text
        without_reason = await submit(finance, f"{page_path}/owner", csrf, key, reason="")
        assert without_reason.status_code == 400

        page = await finance.get(page_path, headers={"Accept": "text/html"})
        data = (await finance.get(f"/api/v1{page_path}")).json()
        listed = await finance.get("/api/v1/finance-tickets?status=resolved&owner=grace")
    assert '<dd data-field="status">Resolved</dd>' in page.text
    assert '<dd data-field="owner">grace</dd>' in page.text
    assert data["ticket"]["status"] == "resolved"
    assert data["next_statuses"] == ["open"]
    moves = [
        (h["kind"], h["detail"]["from"], h["detail"]["to"])
        for h in data["history"]
        if h["kind"] in ("status", "owner")
    ]
    assert moves == [
        ("status", "open", "in_progress"),
        ("status", "in_progress", "resolved"),
        ("owner", None, "grace"),
    ]
    assert ticket in [r["id"] for r in listed.json()["data"]]
    audit = finance_api.sql(
        "SELECT action, outcome FROM ops.audit_log WHERE target_id = %s "
        "AND action LIKE 'action.finance-ticket-%%' ORDER BY chain_seq",
        (str(ticket),),
    )
    assert audit == [
        ("action.finance-ticket-status", "ok"),
        ("action.finance-ticket-status", "ok"),
        ("action.finance-ticket-owner", "ok"),
    ]


async def test_only_finance_and_super_admins_see_tickets(finance_api: Harness) -> None:
    ticket = await _open_from_mismatch_row(finance_api)
    for role, expected in ((Role.OPS, 403), (Role.VIEWER, 403), (Role.SUPER_ADMIN, 200)):
        async with await finance_api.session_client(role) as client:
            for path in (f"/finance-tickets/{ticket}", "/api/v1/finance-tickets"):
                assert (await client.get(path)).status_code == expected, (role, path)


async def test_a_transport_that_is_not_configured_is_on_the_ticket(
    api: Harness,
) -> None:
    async with await api.session_client(Role.FINANCE, "finance-unnotified") as finance:
        done = await click(finance, "/actions/open-finance-ticket?alertname=ChargebackRateHigh")
        assert done.status_code == 200, done.text[:300]
    (ticket,) = api.sql("SELECT max(id) FROM ops.finance_tickets")[0]
    failed = api.sql(
        "SELECT actor, detail->>'error' FROM ops.finance_ticket_events "
        "WHERE ticket_id = %s AND kind = 'notification_failed' ORDER BY actor",
        (ticket,),
    )
    assert failed == [
        ("email", "no email transport is configured"),
        ("slack", "no slack transport is configured"),
    ]
