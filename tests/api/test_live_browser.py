"""The payments page follows its filter live, in headless Chromium (Debian's, driven by
Playwright): a payment committed with the page's status appears within 5 s, one with another
status does not; the API server is stopped and started again while payments commit, and the
page catches up (EventSource reconnects with its last event id) with none lost and none
twice. Screenshots go to test-artifacts/live-browser/."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright
from redis.asyncio import Redis

from api.app import create_app
from api.auth.sessions import COOKIE, SessionStore
from api.rbac import Role
from api.signing import Keys
from opsdeck.embedded import free_port
from opsdeck.supervisor import Service, Supervisor, http_ready
from tests.api.conftest import SECRET, Harness, api_settings
from tests.api.test_browser import CHROMIUM_ARGS
from tests.conftest import REPO, opsdeck_env

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("OPSDECK_TEST_ARTIFACTS", REPO / "test-artifacts")) / "live-browser"
ARRIVAL_SECONDS = 5.0
RESTART_SECONDS = 30.0


class Server:
    """``opsdeck api`` on one port, which can be stopped and started again on it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port(0)
        self.base = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "opsdeck", "api", "--port", str(self.port)]
        ready = http_ready(self.base + "/readyz")
        self._service = Service("api", argv, ARTIFACTS / "server.log", env=env, ready=ready)
        self._supervisor = Supervisor()

    def start(self) -> None:
        self._supervisor.start(self._service)

    def stop(self) -> None:
        self._supervisor.stop_all()


@pytest.fixture
def server(history_url: str, redis_url: str) -> Iterator[Server]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = opsdeck_env(DATABASE_URL=history_url, REDIS_URL=redis_url, OPSDECK_API__SECRET_KEY=SECRET)
    server = Server(env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _session(history_url: str, redis_url: str) -> tuple[Harness, str]:
    settings = api_settings(history_url, redis_url)
    harness = Harness(create_app(settings), settings)
    username = harness.user(Role.FINANCE)
    user_id, version = harness.sql(
        "SELECT id, session_version FROM ops.users WHERE username = %s", (username,)
    )[0]

    async def create() -> str:
        redis = Redis.from_url(redis_url, decode_responses=True)
        try:
            _, cookie = await SessionStore(redis, Keys(SECRET).session, 3600).create(
                user_id, version
            )
        finally:
            await redis.aclose()
        return cookie

    return harness, asyncio.run(create())


def _commit(harness: Harness, status: str) -> str:
    """A payment attempt committed into the platform as the simulator's writers insert it."""
    rows = harness.sql(
        "INSERT INTO platform.transactions (id, customer_id, amount_cents, currency, status, "
        "failure_code, psp, psp_id, payment_intent_id, attempt, card_brand, card_last4, "
        "card_country, livemode, failed_at) "
        "SELECT n.id, (SELECT min(id) FROM platform.customers), 1999, 'USD', %(status)s, "
        "CASE WHEN %(status)s = 'failed' THEN 'card_declined' END, 'stripe', "
        "'ch_browser_' || n.id, 'pi_browser_' || n.id, 1, 'visa', '4242', 'US', true, "
        "CASE WHEN %(status)s = 'failed' THEN now() END "
        "FROM (SELECT max(id) + 1 AS id FROM platform.transactions) n RETURNING id",
        {"status": status},
    )
    return str(rows[0][0])


def _row(page: Page, key: str) -> str:
    return f"table.rows tbody tr[data-key='{key}']"


def _keys(page: Page) -> list[str]:
    found: list[str] = page.eval_on_selector_all(
        "table.rows tbody tr[data-key]", "rows => rows.map(r => r.getAttribute('data-key'))"
    )
    return found


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_payments_page_follows_its_filter_through_a_restart(
    server: Server, history_url: str, redis_url: str
) -> None:
    harness, cookie = _session(history_url, redis_url)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.add_cookies([{"name": COOKIE, "value": cookie, "url": server.base}])
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        try:
            page.goto(f"{server.base}/payments?status=failed")
            page.wait_for_selector("#live[data-state=streaming]", timeout=10_000)
            _shot(page, "01-following")

            failed, captured = _commit(harness, "failed"), _commit(harness, "captured")
            began = time.monotonic()
            page.wait_for_selector(_row(page, failed), timeout=ARRIVAL_SECONDS * 1000)
            arrived = time.monotonic() - began
            assert arrived < ARRIVAL_SECONDS
            page.wait_for_timeout(1500)  # time for a wrong row to show up, were it sent
            assert page.locator(_row(page, captured)).count() == 0
            assert page.locator(f"{_row(page, failed)} td:nth-child(3)").inner_text() == "failed"
            _shot(page, "02-arrived")

            server.stop()
            page.wait_for_selector("#live[data-state=reconnecting]", timeout=10_000)
            missed = [_commit(harness, "failed") for _ in range(3)]
            other = _commit(harness, "captured")
            _shot(page, "03-server-down")
            server.start()
            for key in missed:
                page.wait_for_selector(_row(page, key), timeout=RESTART_SECONDS * 1000)
            page.wait_for_timeout(1500)
            _shot(page, "04-caught-up")

            shown = _keys(page)
            assert len(shown) == len(set(shown)), "a row shown twice"
            assert {failed, *missed} <= set(shown)
            assert page.locator(_row(page, other)).count() == 0
            assert shown.index(missed[-1]) < shown.index(failed)  # newest on top
            assert not [e for e in errors if "Content Security Policy" in e]
        finally:
            context.close()
            browser.close()
