"""An operator manages a partner's webhook endpoint without a terminal, in headless Chromium
(Debian's, driven by Playwright) against a real ``opsdeck api`` and ``opsdeck worker``: the
endpoints list, a new endpoint with its own retry schedule and rate limit (the signing
secret shown once), a test event, an edit, a replay counted by its dry run then confirmed, a
secret rotation that signs the next delivery beside the old secret, disable and enable, and
the endpoint's delivery log into a delivery's page. Every form is a confirmation with a
reason; every change is in the audit log under the operator's name. Screenshots (1400x900)
go to test-artifacts/manage/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyotp
import pytest
from playwright.sync_api import Page, expect, sync_playwright
from standardwebhooks.webhooks import Webhook

from tests.api.conftest import PASSWORD, SECRET, serving
from tests.api.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.authenticator import device_secret
from tests.conftest import REPO, opsdeck_env, run_opsdeck
from tests.webhooks.harness import send, statuses, wait_for, workers
from tests.webhooks.servers import Partner, partner

pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("OPSDECK_TEST_ARTIFACTS", REPO / "test-artifacts")) / "manage"
LOCAL = '["127.0.0.1/32"]'  # the partner listens on the loopback address


@pytest.fixture
def stack(db_url: str, redis_url: str) -> Iterator[tuple[str, Partner, str]]:
    """The API and a worker over one database, and a partner that verifies signatures."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = opsdeck_env(
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        OPSDECK_API__SECRET_KEY=SECRET,
        OPSDECK_WEBHOOKS__SSRF_ALLOW=LOCAL,
    )
    added = run_opsdeck(
        "users", "add", "olga", "--role", "ops", "--totp", "--password-stdin",
        env=env, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    secret = device_secret(added.stdout)
    with (
        partner() as server,
        serving(env, ARTIFACTS / "api.log") as base,
        workers(db_url, ARTIFACTS, OPSDECK_WEBHOOKS__RETRY_JITTER="0"),
    ):
        yield base, server, secret


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _confirm(page: Page, reason: str) -> str:
    """Submit the confirmation page shown, with ``reason``; the outcome it reports."""
    page.fill("#action [name=reason]", reason)
    page.click("#action button[type=submit]")
    outcome = page.locator("p.outcome")
    expect(outcome).to_have_attribute("data-replayed", "false")
    return outcome.inner_text()


def _endpoint_page(page: Page, base: str, made: int) -> None:
    page.goto(f"{base}/webhook-endpoints/{made}")
    expect(page.locator("h1")).to_have_text(f"Webhook endpoint #{made}")


def _one(db_url: str, query: str) -> object:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_an_operator_manages_an_endpoint_in_the_browser(
    stack: tuple[str, Partner, str], db_url: str
) -> None:
    base, server, secret = stack
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        try:
            page.goto(f"{base}/webhook-endpoints")
            page.fill("input[name=username]", "olga")
            page.fill("input[name=password]", PASSWORD)
            page.fill("input[name=code]", pyotp.TOTP(secret).now())
            page.click("button[type=submit]")
            page.wait_for_url("**/webhook-endpoints")
            _shot(page, "01-endpoints-list")

            # New endpoint: its own retry schedule and rate limit; the secret shown once.
            page.click("#adds")
            page.fill("#action [name=url]", server.url("/ok"))
            page.fill("#action [name=event_types]", "payment.*")
            page.fill("#action [name=description]", "Partner A, production")
            page.fill("#action [name=retry_schedule]", "0.3, 0.3")
            page.fill("#action [name=rate_limit]", "20")
            _shot(page, "02-new-endpoint-form")
            assert "created" in _confirm(page, "Partner A goes live, ticket 5120")
            first = page.locator("[data-once]").inner_text()
            assert first.startswith("whsec_")
            _shot(page, "03-created-secret-shown-once")
            made = int(str(_one(db_url, "SELECT max(id) FROM ops.webhook_endpoints")))
            page.click("text=Back")
            expect(page.locator("[data-field=retry_schedule]")).to_contain_text("0.3, 0.3")
            expect(page.locator("[data-field=rate_limit]")).to_contain_text("20/s")
            assert first not in page.content()
            _shot(page, "04-endpoint-page")

            # A test event: a real delivery through the worker, signed with that secret.
            server.secrets = [first]
            page.click("#send-test")
            _confirm(page, "Check the partner's receiver")
            wait_for("the test event", lambda: len(server.seen) == 1)
            assert server.seen[0].verified
            page.click("text=Back")  # the test delivery's own page
            page.wait_for_url("**/webhooks/outbound/*")
            wait_for("its attempt recorded", lambda: statuses(db_url).get("succeeded") == 1)
            page.reload()
            expect(page.locator("#section-attempts")).to_contain_text("test")
            _shot(page, "05-test-delivery")

            # Edit: point it at a failing path, and let three events fail for good.
            _endpoint_page(page, base, made)
            page.fill("#edit [name=url]", server.url("/status/500"))
            page.click("#edit button[type=submit]")
            expect(page.locator("#action [name=url]")).to_have_value(server.url("/status/500"))
            _shot(page, "06-edit-confirmation")
            assert "changed url" in _confirm(page, "Partner moved their receiver")
            send(db_url, 3)
            wait_for("three dead deliveries", lambda: statuses(db_url).get("dead") == 3)
            _endpoint_page(page, base, made)
            page.fill("#edit [name=url]", server.url("/ok"))
            page.click("#edit button[type=submit]")
            _confirm(page, "Partner fixed their receiver")

            # Replay: the dry run's count first, then the same rows sent again.
            _endpoint_page(page, base, made)
            page.fill("#replay [name=from]", "now-1h")
            page.click("#replay button[type=submit]")
            expect(page.locator("p.will")).to_contain_text("3 deliveries would be replayed")
            assert statuses(db_url) == {"succeeded": 1, "dead": 3}
            _shot(page, "07-replay-dry-run")
            assert "3 of 3 failed deliveries" in _confirm(page, "Replay after the partner fix")
            wait_for("the replays", lambda: statuses(db_url) == {"succeeded": 4})
            _shot(page, "08-replayed")

            # Rotate: the new secret shown once, the old one signing beside it for 24 h.
            _endpoint_page(page, base, made)
            page.click("#rotate-secret")
            expect(page.locator("p.will")).to_contain_text("keeps signing beside it for 24 h")
            _confirm(page, "Quarterly secret rotation")
            second = page.locator("[data-once]").inner_text()
            assert second.startswith("whsec_")
            assert second != first
            _shot(page, "09-rotated-secret")
            server.secrets = [second]
            seen = len(server.seen)
            send(db_url, 1)
            wait_for("the next delivery", lambda: len(server.seen) == seen + 1)
            signed = server.seen[-1]
            assert signed.verified
            Webhook(first).verify(signed.body, signed.headers, json_parse=False)

            # Disable, then enable.
            _endpoint_page(page, base, made)
            page.click("#disable")
            assert "disabled" in _confirm(page, "Partner maintenance window")
            _endpoint_page(page, base, made)
            expect(page.locator("[data-field=state]")).to_have_text("disabled")
            _shot(page, "10-disabled")
            page.click("#enable")
            assert "enabled" in _confirm(page, "Partner maintenance is over")
            _endpoint_page(page, base, made)
            expect(page.locator("[data-field=state]")).to_have_text("enabled")

            # The delivery log beside it, newest first, into a delivery's page.
            rows = page.locator("#deliveries tbody tr[data-delivery]")
            ids = [int(r.get_attribute("data-delivery") or 0) for r in rows.all()]
            assert ids == sorted(ids, reverse=True)
            assert len(ids) == 5
            _shot(page, "11-endpoint-with-delivery-log")
            rows.first.locator("a").click()
            page.wait_for_url(f"**/webhooks/outbound/{ids[0]}")
            expect(page.locator("#section-delivery")).to_contain_text(f"{made}")
            _shot(page, "12-delivery-from-log")
        finally:
            context.close()
            browser.close()

    with psycopg.connect(db_url) as conn:
        actions = [
            str(r[0])
            for r in conn.execute(
                "SELECT action FROM ops.audit_log WHERE actor = 'olga' "
                "AND action LIKE 'action.%%' ORDER BY id"
            )
        ]
    assert actions == [
        f"action.webhook-endpoint-{name}"
        for name in (
            "create",
            "test",
            "edit",
            "edit",
            "replay",
            "rotate-secret",
            "disable",
            "enable",
        )
    ]
