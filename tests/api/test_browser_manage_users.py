"""Users and API keys managed in headless Chromium (Debian's, driven by Playwright), with
no terminal: a super admin adds a user and sees the password once, changes their role,
disables and enables them, resets their password and second factor, ends their sessions,
and is refused when they would disable themselves, the last super admin; then makes an API
key with scopes, an expiry and a rate limit, sees its secret once, uses it, reads its
requests per day, rotates and revokes it. The new user signs in with the password shown
and sees only their own keys. Screenshots at 1400x900 go to test-artifacts/manage/."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pyotp
import pytest
from playwright.sync_api import Page, ViewportSize, expect, sync_playwright

from tests.api.conftest import PASSWORD, SECRET, serving
from tests.authenticator import device_secret
from tests.conftest import REPO, opsdeck_env, run_opsdeck

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("OPSDECK_TEST_ARTIFACTS", REPO / "test-artifacts")) / "manage"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}
REASON = "Onboarding for the payments on-call rota"


@pytest.fixture
def server(db_url: str, redis_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = opsdeck_env(
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        OPSDECK_API__SECRET_KEY=SECRET,
        OPSDECK_API__SESSION_RECHECK_SECONDS="0",
        OPSDECK_API__KEY_USAGE_FLUSH_SECONDS="0.5",
    )
    with serving(env, ARTIFACTS / "server.log") as base:
        yield base, env


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _confirm(page: Page, shot: str) -> str:
    """Give the reason on the confirmation page shown, submit it; the outcome's text."""
    expect(page.locator("p.will")).to_be_visible()
    page.fill("#action input[name=reason]", REASON)
    _shot(page, f"{shot}-confirm")
    page.click("#action button[type=submit]")
    outcome = page.locator("p.outcome")
    expect(outcome).to_be_visible()
    _shot(page, f"{shot}-done")
    return outcome.inner_text()


def _back(page: Page) -> None:
    """Follow the outcome page's link back to the record."""
    page.get_by_role("link", name="Back", exact=True).click()


def _secret(page: Page) -> str:
    return page.locator("#shown-once code.secret").inner_text()


def _sign_in(page: Page, base: str, name: str, password: str, code: str = "") -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.fill("input[name=code]", code)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/(login/enrol)?$"))
    if page.url.endswith("/login/enrol"):  # added here without a device: enrols one first
        secret = "".join(page.locator("#totp-secret").inner_text().split())
        page.fill("input[name=code]", pyotp.TOTP(secret).now())
        page.click("form.login button[type=submit]")
        page.wait_for_url(re.compile(r"/$"))


def _manage_grace(page: Page, base: str) -> str:
    """Add grace and put her account through every change; her last password."""
    page.goto(f"{base}/users")
    page.fill("#add-user input[name=username]", "grace")
    page.select_option("#add-user select[name=role]", "ops")
    page.click("#add-user button[type=submit]")
    assert "grace created as ops" in _confirm(page, "01-add-user")
    first_password = _secret(page)
    _back(page)
    expect(page.locator("[data-field=role]")).to_have_text("ops")
    page.select_option("#change-role select[name=role]", "finance")
    page.click("#change-role button[type=submit]")
    assert "grace is now finance" in _confirm(page, "02-role")
    _back(page)
    page.click("#disable")
    assert "grace is disabled" in _confirm(page, "03-disable")
    _back(page)
    expect(page.locator("[data-field=access]")).to_contain_text("disabled since")
    page.click("#enable")
    assert "grace is enabled" in _confirm(page, "04-enable")
    _back(page)
    page.click("#reset-password")
    assert "password of grace is reset" in _confirm(page, "05-password")
    password = _secret(page)
    assert password != first_password
    _back(page)
    page.click("#reset-totp")
    assert "second factor of grace is reset" in _confirm(page, "06-totp")
    _back(page)
    page.click("#end-sessions")
    assert "every session of grace has ended" in _confirm(page, "07-sessions")
    return password


def _refuse_own_disable(page: Page, base: str, own_id: int) -> None:
    page.goto(f"{base}/users/{own_id}")
    page.click("#disable")
    page.fill("#action input[name=reason]", REASON)
    page.click("#action button[type=submit]")
    expect(page.locator("main")).to_contain_text("last super admin who can sign in")
    _shot(page, "08-last-super-admin-refused")


def _make_key(page: Page, base: str) -> tuple[str, str]:
    """A key made on the keys page: (its secret, its page's URL)."""
    page.goto(f"{base}/api-keys")
    _shot(page, "09-api-keys")
    page.fill("#create-key input[name=name]", "status-bot")
    page.check("#create-key input[value='incidents.read']")
    page.check("#create-key input[value='metrics.read']")
    expiry = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
    page.fill("#create-key input[name=expires]", expiry)
    page.fill("#create-key input[name=rate_limit]", "30")
    page.click("#create-key button[type=submit]")
    expect(page.locator("p.will")).to_contain_text("incidents.read, metrics.read")
    assert "created for ada" in _confirm(page, "10-create-key")
    token = _secret(page)
    _back(page)
    expect(page.locator("[data-field=expires]")).to_contain_text(expiry)
    expect(page.locator("[data-field=rate_limit]")).to_contain_text("30 requests a minute")
    return token, page.url


def _use_and_retire(page: Page, base: str, token: str, key_url: str) -> None:
    for _ in range(3):
        used = httpx.get(f"{base}/api/v1/incidents", headers={"Authorization": f"Bearer {token}"})
        assert used.status_code == 200
    calls = page.locator("#usage [data-field=calls]")
    for _ in range(60):  # saved every 0.5 s by the API: reload until it shows
        page.goto(key_url)
        if calls.count() and calls.first.inner_text() == "3":
            break
        page.wait_for_timeout(500)
    expect(calls.first).to_have_text("3")
    _shot(page, "11-key-usage")
    page.click("#rotate")
    assert "is replaced by" in _confirm(page, "12-rotate")
    rotated = _secret(page)
    old = httpx.get(f"{base}/api/v1/incidents", headers={"Authorization": f"Bearer {token}"})
    assert old.status_code == 401
    new = httpx.get(f"{base}/api/v1/incidents", headers={"Authorization": f"Bearer {rotated}"})
    assert new.status_code == 200
    _back(page)
    page.click("#revoke")
    assert "is revoked" in _confirm(page, "13-revoke")
    gone = httpx.get(f"{base}/api/v1/incidents", headers={"Authorization": f"Bearer {rotated}"})
    assert gone.status_code == 401
    _back(page)
    expect(page.locator("[data-field=status]")).to_have_text("revoked")


def _grace_sees_her_own(page: Page, base: str, password: str, ada_prefix: str) -> None:
    _sign_in(page, base, "grace", password)
    expect(page.locator("header nav")).not_to_contain_text("Users")
    page.goto(f"{base}/api-keys")
    expect(page.locator("#keys")).not_to_contain_text(ada_prefix)
    expect(page.locator("#create-key")).not_to_contain_text("users.manage")
    page.fill("#create-key input[name=name]", "grace-reports")
    page.check("#create-key input[value='usage.read']")
    page.click("#create-key button[type=submit]")
    assert "created for grace" in _confirm(page, "14-grace-key")
    page.goto(f"{base}/users")
    expect(page.locator("main")).to_contain_text("does not hold users.manage")
    _shot(page, "15-grace-refused-users")


def test_users_and_keys_managed_in_the_browser(
    server: tuple[str, dict[str, str]], db_url: str
) -> None:
    base, env = server
    added = run_opsdeck(
        "users",
        "add",
        "ada",
        "--role",
        "super_admin",
        "--password-stdin",
        env=env,
        stdin=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    secret = device_secret(added.stdout)
    with psycopg.connect(db_url) as conn:
        ada = int(conn.execute("SELECT id FROM ops.users WHERE username = 'ada'").fetchone()[0])  # type: ignore[index]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            admin = browser.new_context(viewport=VIEWPORT).new_page()
            _sign_in(admin, base, "ada", PASSWORD, pyotp.TOTP(secret).now())
            password = _manage_grace(admin, base)
            _refuse_own_disable(admin, base, ada)
            token, key_url = _make_key(admin, base)
            _use_and_retire(admin, base, token, key_url)
            grace = browser.new_context(viewport=VIEWPORT).new_page()
            _grace_sees_her_own(grace, base, password, token.split("_")[1])
        finally:
            browser.close()

    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT action, outcome FROM ops.audit_log WHERE actor = 'ada' "
            "AND action LIKE 'action.%' ORDER BY chain_seq"
        ).fetchall()
    assert rows == [
        ("action.user-add", "ok"),
        ("action.user-role", "ok"),
        ("action.user-disable", "ok"),
        ("action.user-enable", "ok"),
        ("action.user-password-reset", "ok"),
        ("action.user-totp-reset", "ok"),
        ("action.user-sessions-end", "ok"),
        ("action.user-disable", "failed"),
        ("action.api-key-create", "ok"),
        ("action.api-key-rotate", "ok"),
        ("action.api-key-revoke", "ok"),
    ]
    verify = run_opsdeck("audit", "verify", env=opsdeck_env(DATABASE_URL=db_url))
    assert verify.returncode == 0, verify.stderr
