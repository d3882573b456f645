"""A newcomer's first minutes, in headless Chromium: ``opsdeck demo`` with nothing configured
prints where to sign in and a new super admin's password; the sign-in page takes it and
shows a QR code, which is read off the screen like a phone would and gives the code that
enrols the device and lands on the home page. Then ``opsdeck`` commands run from the same
directory, with nothing in the environment, reach the demo's database and audit trail. A
second start says the account exists. Screenshots go to test-artifacts/demo-signin/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from core import running_demo
from tests import qr_reader
from tests.api.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import REPO, SUITE_SETTINGS, opsdeck_env
from tests.opsdeck.test_demo import DemoProcess, _alive

pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("OPSDECK_TEST_ARTIFACTS", REPO / "test-artifacts")) / "demo-signin"
READY = "opsdeck commands run from this directory reach this demo"
STARTUP_SECONDS = 180


def _newcomer_env() -> dict[str, str]:
    """A shell with opsdeck installed and nothing of opsdeck's set: no URL, no key."""
    return {k: v for k, v in opsdeck_env().items() if k not in SUITE_SETTINGS}


def _printed(demo: DemoProcess, label: str) -> str:
    """The value on the demo's ``  <label>  <value>`` line."""
    for line in demo.lines:
        if line.split(maxsplit=1)[:1] == [label]:
            return line.split(maxsplit=1)[1]
    raise AssertionError(f"no {label!r} line:\n" + "\n".join(demo.lines))


def _opsdeck(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsdeck", *args],
        cwd=cwd,
        env=_newcomer_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _enrol_in_chromium(open_url: str, user: str, password: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(open_url)
        _shot(page, "1-sign-in")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/login/enrol$"))
        expect(page.locator("#totp-qr")).to_be_visible()
        _shot(page, "2-enrol")
        # The authenticator app's view: the code as drawn on the screen.
        uri = qr_reader.from_png(page.locator("#totp-qr").screenshot())
        shown = page.locator("#totp-secret").inner_text().replace(" ", "")
        secret = pyotp.parse_uri(uri).secret
        assert secret == shown
        assert pyotp.parse_uri(uri).name == user
        # Nothing else opens before the device is saved.
        page.goto(open_url.removesuffix("/login") + "/payments")
        expect(page).to_have_url(re.compile(r"/login\?next=%2Fpayments"))
        page.goto(open_url + "/enrol")
        assert page.locator("#totp-secret").inner_text().replace(" ", "") == shown
        page.fill("input[name=code]", pyotp.TOTP(secret).now())
        page.click("button[type=submit]")
        expect(page).to_have_url(open_url.removesuffix("/login") + "/")
        expect(page.locator(".who")).to_contain_text(f"{user} · super_admin")
        _shot(page, "3-home")
        browser.close()


def test_a_newcomer_signs_in_to_the_demo_and_its_cli_reaches_it(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    demo = DemoProcess(tmp_path, _newcomer_env())
    try:
        demo.read_until(READY, timeout=STARTUP_SECONDS)
        open_url, user = _printed(demo, "open"), _printed(demo, "user")
        password = _printed(demo, "password").removesuffix("(shown only now)").strip()
        assert open_url.startswith("http://127.0.0.1:")
        assert open_url.endswith("/login")
        assert user == "admin"
        assert "enrolled at the first sign-in" in _printed(demo, "two-factor")
        _enrol_in_chromium(open_url, user, password)

        listed = _opsdeck(tmp_path, "users", "list")
        assert listed.returncode == 0, listed.stderr
        (row,) = [line.split() for line in listed.stdout.splitlines() if line.startswith("admin")]
        assert row[1:3] == ["super_admin", "yes"]  # the device enrolled in the browser
        # The audit trail's key is the demo's own, found beside it: the chain verifies.
        verified = _opsdeck(tmp_path, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        demo.interrupt()
    assert demo.process.returncode == 0
    assert _alive(demo.descendants) == []
    assert not running_demo.settings_file(tmp_path / ".opsdeck").exists()
    # Stopped, the demo is nobody's database any more.
    assert _opsdeck(tmp_path, "users", "list").returncode == 2

    again = DemoProcess(tmp_path, _newcomer_env())
    try:
        again.read_until(READY, timeout=STARTUP_SECONDS)
        said = _printed(again, "password")
        assert "opsdeck users reset-password admin" in said
        assert password not in "\n".join(again.lines)
    finally:
        again.interrupt()
    assert _alive(again.descendants) == []
