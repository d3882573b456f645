"""Readable pages in headless Chromium (Debian's, driven by Playwright) against a real
``opsdeck api`` over two days of history: the home page says what needs attention, the
preferences page sets the viewer's time zone, a list shows money, badges and counts, its
quick range writes the same ``from``/``to`` as the dashboards' Grafana time picker, and its
absolute range (datetime-local inputs in the viewer's zone) is sent as epoch milliseconds
by the page's script. Screenshots at 1400x900 go to test-artifacts/readable/."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pyotp
import pytest
from playwright.sync_api import Page, ViewportSize, expect, sync_playwright

from tests.api.conftest import PASSWORD, SECRET, serving
from tests.authenticator import add_with_device
from tests.conftest import REPO, opsdeck_env

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("OPSDECK_TEST_ARTIFACTS", REPO / "test-artifacts")) / "readable"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}
BERLIN = ZoneInfo("Europe/Berlin")
DASHBOARDS = REPO / "dashboards" / "generated"
OPSDECK = (sys.executable, "-m", "opsdeck")


@pytest.fixture
def server(history_url: str, redis_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = opsdeck_env(DATABASE_URL=history_url, REDIS_URL=redis_url, OPSDECK_API__SECRET_KEY=SECRET)
    with serving(env, ARTIFACTS / "server.log") as base:
        yield base, env


def _super_admin(env: dict[str, str], name: str) -> str:
    """Add a super admin with the CLI; their TOTP secret."""
    return add_with_device(env, name, "super_admin", PASSWORD)


def _grafana_quick_range(label: str) -> tuple[str, str]:
    """The from/to Grafana's time picker writes for one of the dashboards' quick ranges."""
    for path in sorted(DASHBOARDS.glob("*.json")):
        for quick in json.loads(path.read_text())["timepicker"]["quick_ranges"]:
            if quick["display"] == label:
                return quick["from"], quick["to"]
    raise AssertionError(f"no dashboard offers {label!r}")


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_readable_pages(server: tuple[str, dict[str, str]]) -> None:
    base, env = server
    secret = _super_admin(env, "grace")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_context(viewport=VIEWPORT).new_page()
        try:
            page.goto(f"{base}/")
            page.fill("input[name=username]", "grace")
            page.fill("input[name=password]", PASSWORD)
            page.fill("input[name=code]", pyotp.TOTP(secret).now())
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            expect(page.locator("h1")).to_have_text("Needs attention now")
            assert page.locator("[data-attention]").count() >= 4
            assert page.locator("ul.cards").count() == 0
            _shot(page, "home")

            # The viewer's zone, from the preferences page the header links to.
            page.click("#preferences-link")
            page.select_option("#time-zone", "Europe/Berlin")
            page.click("#preferences button[type=submit]")
            expect(page.locator("#current-zone")).to_have_attribute("data-zone", "Europe/Berlin")
            _shot(page, "preferences")

            # A list: money by currency, badges, the count of matches, times in Berlin.
            page.goto(f"{base}/payments?from=now-2d&to=now")
            expect(page.locator("#matches")).to_contain_text(" of ")
            amounts = page.locator("table.rows tbody tr td:nth-child(4)").all_inner_texts()
            assert amounts
            assert all(re.fullmatch(r"-?([€£¥$][\d,.]+|[\d,.]+ [A-Z]{3})", a) for a in amounts)
            assert page.locator("table.rows tbody .badge").count() >= len(amounts)
            created = page.locator("table.rows tbody tr td:nth-child(2)").first.inner_text()
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0[12]:00", created), created
            _shot(page, "payments")

            # A quick range: the same from/to as Grafana's picker for it.
            page.click("#quick-ranges summary")
            page.click("#quick-ranges a[data-quick='Last 1 hour']")
            page.wait_for_url("**from=now-1h**")
            query = _query(page.url)
            assert (query["from"][0], query["to"][0]) == _grafana_quick_range("Last 1 hour")
            expect(page.locator("#range-applied")).to_contain_text("Last 1 hour")
            _shot(page, "payments-last-hour")

            # An absolute range in Berlin wall time, sent as epoch ms by the page's script.
            end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
            start = end - timedelta(hours=5)
            page.fill(
                "#absolute-range input[name=from]", f"{start.astimezone(BERLIN):%Y-%m-%dT%H:%M:%S}"
            )
            page.fill(
                "#absolute-range input[name=to]", f"{end.astimezone(BERLIN):%Y-%m-%dT%H:%M:%S}"
            )
            page.click("#absolute-range button[type=submit]")
            page.wait_for_url(re.compile(r"from=\d+"))
            query = _query(page.url)
            assert query["from"] == [str(int(start.timestamp() * 1000))]
            assert query["to"] == [str(int(end.timestamp() * 1000))]
            assert "timezone" not in query
            shown = f"{start.astimezone(BERLIN):%Y-%m-%d %H:%M:%S} → {end.astimezone(BERLIN):%Y-%m-%d %H:%M:%S} Europe/Berlin"
            expect(page.locator("#range-applied")).to_have_text(shown)
            _shot(page, "payments-absolute")
        finally:
            browser.close()
