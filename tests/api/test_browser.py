"""A super admin's path through the real pages, in headless Chromium (Debian's, driven by
Playwright): sign in with TOTP, follow a Grafana link with a time range into the payments
explorer, filter, page, open a detail with its retry history, export CSV, and unmask a
record with a reason. And an operator's path from the Command Center: its data links, with
Grafana's variables substituted, into a filtered drilldown, a row's action confirmed with a
reason, an incident opened with its form, then acknowledged and annotated from its own page,
its timeline in order. Screenshots of every step go to test-artifacts/api-browser/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyotp
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.api.conftest import PASSWORD, SECRET, serving
from tests.authenticator import add_with_device, device_secret
from tests.conftest import REPO, opsdeck_env, run_opsdeck
from tests.dashboards.link_promises import data_links, render

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
OPSDECK = (sys.executable, "-m", "opsdeck")
COMMAND_CENTER = "opsdeck-command-center"
MAX_PAGES = 50  # pages of a list a test follows to its end
# The timeline entries an incident run by hand records (escalation steps come between).
STEPS = {"opened", "action", "acknowledged", "note"}


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
    secret = device_secret(added.stdout)
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


def _super_admin(env: dict[str, str], name: str) -> str:
    """Add a super admin with the CLI; their TOTP secret."""
    return add_with_device(env, name, "super_admin", PASSWORD)


def _sign_in(page: Page, name: str, secret: str) -> None:
    """Fill in and submit the sign-in page shown."""
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("button[type=submit]")


def _command_center_link(panel: str, title: str) -> str:
    """A data link of the generated Command Center, as committed."""
    wanted = f"{COMMAND_CENTER}/{panel}/{title}"
    (link,) = [link for link in data_links() if link.id == wanted]
    return link.url


def _column(page: Page, label: str) -> list[str]:
    """The cells of the column headed ``label`` in the page's table of rows (a page whose
    bounded scan found none shows one "Nothing matches." cell instead: no rows)."""
    headers = page.locator("table.rows thead th").all_inner_texts()
    index = headers.index(label) + 1
    rows = "table.rows tbody tr:not(:has(td.muted))"
    return page.locator(f"{rows} td:nth-child({index})").all_inner_texts()


def _walk(page: Page, label: str, check: Callable[[], None]) -> list[str]:
    """The column ``label`` over every page of a list, following "Next page" to the end
    (past pages where a bounded scan stopped before any row matched); ``check`` runs on
    every page."""
    cells: list[str] = []
    for _ in range(MAX_PAGES):
        check()
        cells += _column(page, label)
        following = page.locator("#next-page")
        if following.count() == 0:
            return cells
        href = following.get_attribute("href")
        with page.expect_response(lambda r: r.request.is_navigation_request()) as answer:
            following.click()
        page.wait_for_load_state()
        assert answer.value.status == 200, f"{href}: {page.inner_text('main')}"
    raise AssertionError(f"more than {MAX_PAGES} pages from {page.url}")


def _shows(page: Page, start: datetime, end: datetime) -> None:
    """The double bookings list shows the link's filter and time range, and keeps them."""
    assert page.input_value("#filters input[name=from]") == _ms(start)
    assert page.input_value("#filters input[name=to]") == _ms(end)
    assert page.input_value("#filters select[name=double_booked]") == "true"
    shown = f"{start:%Y-%m-%d %H:%M:%S} → {end:%Y-%m-%d %H:%M:%S} UTC"
    expect(page.locator("p.range")).to_contain_text(shown)
    assert set(_column(page, "Double-booked")) <= {"yes"}
    created = _column(page, "Created")
    assert all(f"{start:%Y-%m-%d %H:%M:%S}" <= at <= f"{end:%Y-%m-%d %H:%M:%S}" for at in created)


def _ms(at: datetime) -> str:
    return str(int(at.timestamp() * 1000))


def _confirm(page: Page, reason: str, reason_field: str = "reason") -> str:
    """Submit the confirmation page shown with ``reason``; the outcome it reports."""
    page.fill(f"#action [name={reason_field}]", reason)
    page.click("#action button[type=submit]")
    outcome = page.locator("p.outcome")
    expect(outcome).to_have_attribute("data-replayed", "false")
    return outcome.inner_text()


def _timeline(page: Page) -> list[tuple[str, str, str]]:
    """(kind, time, text) of every row of the incident page's timeline, in page order."""
    rows = page.locator("#section-timeline table.timeline tbody tr")
    return [
        (
            row.get_attribute("data-kind") or "",
            row.locator("td").nth(0).inner_text(),
            row.locator("td").nth(1).inner_text(),
        )
        for row in rows.all()
    ]


def test_command_center_to_incident_journey(
    server: tuple[str, dict[str, str]], history_url: str
) -> None:
    """From the Command Center's links, rendered as Grafana renders them, to a filtered
    drilldown, a row's action, an incident opened with its form, and that incident's page
    run by hand: acknowledged and annotated from its own buttons, its timeline in order."""
    base, env = server
    secret = _super_admin(env, "ada")
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=3)  # the whole two days of history
    grafana = {"api_url": base, "__from": _ms(start), "__to": _ms(end)}
    double_bookings = render(
        _command_center_link("Booking Conflict Rate", "Double bookings"), grafana
    )
    assert double_bookings.startswith(f"{base}/bookings?from={_ms(start)}&to={_ms(end)}&")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = context.new_page()
        try:
            # The Conflict Rate tile's link: signed in on the way, then the filtered list.
            page.goto(double_bookings)
            expect(page).to_have_url(re.compile(r"/login\?next=%2Fbookings"))
            _sign_in(page, "ada", secret)
            page.wait_for_url("**/bookings?**double_booked=true**")
            _shot(page, "11-double-bookings-from-command-center")
            bookings = _walk(page, "Id", lambda: _shows(page, start, end))
            assert bookings
            assert len(set(bookings)) == len(bookings)
            booking = bookings[0]
            _shot(page, "12-double-bookings-last-page")

            # The Recent Double-bookings table's links, with that row's booking_id.
            row = {**grafana, "booking_id": booking}
            page.goto(render(_command_center_link("Recent Double-bookings", "Double booking"), row))
            expect(page.locator("h1")).to_have_text("Double booking")
            assert page.locator("#section-double_bookings table.rows tbody tr").count() >= 1
            _shot(page, "13-double-booking-record")
            page.goto(
                render(_command_center_link("Recent Double-bookings", "Notify partners"), row)
            )
            expect(page.locator("h1")).to_have_text("Notify partners")
            expect(page.locator("dd[data-target=booking]")).to_have_text(booking)
            _shot(page, "14-notify-partners-confirmation")
            outcome = _confirm(page, f"Booking {booking} was taken twice; partners check theirs")
            assert re.fullmatch(r"partner notice sent to \d+ endpoint\(s\)", outcome), outcome
            _shot(page, "15-partners-notified")

            # The tile's Create incident, with the severity and team of the form.
            alert = "BookingConflictRateHigh"
            page.goto(
                render(_command_center_link("Booking Conflict Rate", "Create incident"), grafana)
            )
            expect(page.locator("dd[data-target=alertname]")).to_have_text(alert)
            page.select_option("#action select[name=severity]", "critical")
            page.select_option("#action select[name=team]", "bookings")
            page.fill("#action input[name=services]", "booking-api")
            _shot(page, "16-create-incident-confirmation")
            opened = _confirm(page, "Conflict rate doubled after the calendar deploy")
            found = re.fullmatch(r"opened incident #(\d+)", opened)
            assert found, opened
            incident = found.group(1)
            _shot(page, "17-incident-opened")

            # The incident's page: acknowledged, then a note, each from its own button.
            page.goto(f"{base}/incidents/{incident}")
            expect(page.locator("h1")).to_have_text(f"Incident #{incident}: {alert}")
            fields = page.locator("#incident")
            expect(fields.locator("dd[data-field=status]")).to_have_text("triggered")
            expect(fields.locator("dd[data-field=severity]")).to_have_text("critical")
            expect(fields.locator("dd[data-field=team]")).to_have_text("bookings")
            expect(fields.locator("dd[data-field=services]")).to_have_text("booking-api")
            _shot(page, "18-incident-page")
            page.click("#incident-actions a[data-action=acknowledge]")
            expect(page.locator("dd[data-target=incident]")).to_have_text(incident)
            _shot(page, "19-acknowledge-confirmation")
            assert (
                _confirm(page, "Looking at the calendar sync now") == "acknowledged 1 incident(s)"
            )
            page.goto(f"{base}/incidents/{incident}")
            expect(fields.locator("dd[data-field=status]")).to_have_text("acknowledged")
            expect(fields.locator("dd[data-field=owner]")).to_have_text("ada")
            expect(page.locator("#incident-actions a[data-action=acknowledge]")).to_have_count(0)
            page.click("#incident-actions a[data-action=add-note]")
            expect(page.locator("dd[data-target=incident]")).to_have_text(incident)
            noted = _confirm(page, "Rolled the calendar deploy back at 14:02", reason_field="note")
            assert noted == f"note added to incident #{incident}"
            page.goto(f"{base}/incidents/{incident}")
            timeline = _timeline(page)
            _shot(page, "20-incident-timeline")
        finally:
            context.close()
            browser.close()

    times = [at for _, at, _ in timeline]
    assert times == sorted(times)
    ours = [(kind, text) for kind, _, text in timeline if kind in STEPS]
    assert ours == [
        ("opened", "Opened by ada (manual)"),
        (
            "action",
            f"create-incident by ada: opened incident #{incident}: Conflict rate doubled after the calendar deploy",
        ),
        ("acknowledged", "Acknowledged by ada via incident-page: Looking at the calendar sync now"),
        (
            "action",
            "acknowledge by ada: acknowledged 1 incident(s): Looking at the calendar sync now",
        ),
        ("note", "Note by ada: Rolled the calendar deploy back at 14:02"),
        ("action", f"add-note by ada: {noted}: Rolled the calendar deploy back at 14:02"),
    ]
    with psycopg.connect(history_url) as conn:
        audited = conn.execute(
            "SELECT action, target_id FROM ops.audit_log WHERE actor = 'ada' ORDER BY chain_seq"
        ).fetchall()
    assert audited == [
        ("sign_in", None),
        ("action.notify-partners", f"booking:{booking}"),
        ("action.create-incident", f"alertname:{alert}"),
        ("action.acknowledge", f"incident:{incident}"),
        ("action.add-note", f"incident:{incident}"),
    ]
    verify = run_opsdeck("audit", "verify", env=opsdeck_env(DATABASE_URL=history_url))
    assert verify.returncode == 0, verify.stderr
