"""A super admin's path through the real pages, in headless Chromium (Debian's, driven by
Playwright): sign in with TOTP, follow a Grafana link with a time range into the payments
explorer, filter, page, open a detail with its retry history, export CSV, and unmask a
record with a reason. Screenshots of every step go to test-artifacts/api-browser/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyotp
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.api.conftest import PASSWORD, SECRET, serving
from tests.conftest import REPO, opsdeck_env, run_opsdeck

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("OPSDECK_TEST_ARTIFACTS", REPO / "test-artifacts")) / "api-browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server(history_url: str, redis_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = opsdeck_env(DATABASE_URL=history_url, REDIS_URL=redis_url, OPSDECK_API__SECRET_KEY=SECRET)
    with serving(env, ARTIFACTS / "server.log") as base:
        yield base, env


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_super_admin_journey(server: tuple[str, dict[str, str]], history_url: str) -> None:
    base, env = server
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "opsdeck",
            "users",
            "add",
            "ada",
            "--role",
            "super_admin",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    secret = added.stdout.split(
        "TOTP secret (add it to an authenticator app now; it is not shown again): "
    )[1].split()[0]
    end = datetime.now(UTC)
    start = end - timedelta(hours=30)
    link = f"{base}/payments?orgId=1&from={int(start.timestamp() * 1000)}&to={int(end.timestamp() * 1000)}&var-livemode=true"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1600, "height": 1000}
        )
        page = context.new_page()
        try:
            # A Grafana tile's link: not signed in yet, so the sign-in page, then back.
            page.goto(link)
            expect(page).to_have_url(re.compile(r"/login\?next=%2Fpayments"))
            _shot(page, "01-sign-in")
            page.fill("input[name=username]", "ada")
            page.fill("input[name=password]", PASSWORD)
            page.fill("input[name=code]", pyotp.TOTP(secret).now())
            page.click("button[type=submit]")
            page.wait_for_url("**/payments?**")
            assert page.input_value("input[name=from]") == str(int(start.timestamp() * 1000))
            expect(page.locator(".mode")).to_have_text("LIVE MODE")
            _shot(page, "02-payments-from-grafana")

            # Filter, then page.
            page.select_option("select[name=status]", "failed")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**status=failed**")
            statuses = page.locator("table.rows tbody tr td:nth-child(3)").all_inner_texts()
            assert statuses
            assert set(statuses) == {"failed"}
            first_page = page.locator("table.rows tbody tr td:nth-child(1)").all_inner_texts()
            _shot(page, "03-filtered")
            page.click("#next-page")
            page.wait_for_url("**cursor=**")
            second_page = page.locator("table.rows tbody tr td:nth-child(1)").all_inner_texts()
            assert second_page
            assert not set(first_page) & set(second_page)
            _shot(page, "04-next-page")

            # Retries only, and the detail of one with its retry history.
            page.fill("input[name=attempt]", "2")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**attempt=2**")
            page.locator("table.rows tbody tr td:nth-child(1) a").first.click()
            page.wait_for_url("**/payments/*")
            history = page.locator("#section-retry_history table.rows tbody tr")
            assert history.count() >= 2
            _shot(page, "05-detail-retry-history")
            detail_url = page.url

            # Export what the list shows.
            page.go_back()
            with page.expect_download() as download_info:
                page.click("#export-csv")
            download = download_info.value
            saved = ARTIFACTS / "export.csv"
            download.save_as(saved)
            lines = saved.read_text().splitlines()
            assert lines[0].startswith("id,created_at,status")
            assert len(lines) > 1
            assert "***@" in lines[1]

            # Unmask the customer of the payment, with a reason.
            page.goto(detail_url)
            payment_id = int(detail_url.rsplit("/", 1)[1])
            with psycopg.connect(history_url) as conn:
                email = conn.execute(
                    "SELECT c.email FROM platform.transactions t JOIN platform.customers c ON c.id = t.customer_id WHERE t.id = %s",
                    (payment_id,),
                ).fetchone()[0]  # type: ignore[index]
            assert email not in page.content()
            page.fill("#unmask input[name=reason]", "Customer disputes the charge, ticket 8812")
            page.click("#unmask button[type=submit]")
            page.wait_for_url(detail_url)
            assert email in page.content()
            _shot(page, "06-unmasked")
        finally:
            context.close()
            browser.close()

    with psycopg.connect(history_url) as conn:
        actions = [
            r[0]
            for r in conn.execute(
                "SELECT action FROM ops.audit_log WHERE actor = 'ada' ORDER BY chain_seq"
            )
        ]
    assert actions == ["sign_in", "export", "pii.unmask"]
    verify = run_opsdeck("audit", "verify", env=opsdeck_env(DATABASE_URL=history_url))
    assert verify.returncode == 0, verify.stderr
