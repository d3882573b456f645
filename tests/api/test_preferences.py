"""A person's time zone, end to end: the preferences form (CSRF, audit, an unknown zone
refused by name, the database's own check), list and detail pages showing times in it with
the range control speaking it, and API keys' JSON staying in UTC."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import httpx
import psycopg
import pytest

from api.rbac import Role
from tests.api.conftest import Harness, api_settings, csrf_token, running
from tests.api.pages_html import column, table
from tests.conftest import scratch_database

pytestmark = pytest.mark.anyio

# A summer and a winter check: Berlin is UTC+2, then UTC+1.
SUMMER = datetime(2026, 7, 1, 10, 0, 0, tzinfo=UTC)
WINTER = datetime(2026, 12, 5, 13, 3, 7, tzinfo=UTC)
RANGE = "from=2026-06-01T00:00:00Z&to=2026-12-31T00:00:00Z"


@pytest.fixture(scope="module")
def prefs_db(admin_url: str, template_db: str) -> Iterator[str]:
    with scratch_database(admin_url, template_db) as url:
        yield url


@pytest.fixture(scope="module")
async def app(prefs_db: str, api_redis: str) -> AsyncIterator[Harness]:
    async with running(api_settings(prefs_db, api_redis)) as harness:
        harness.sql(
            "INSERT INTO platform.service_checks (service, checked_at, ok, latency_ms) "
            "VALUES ('booking_api', %s, true, 12.5), ('booking_api', %s, false, NULL)",
            (SUMMER, WINTER),
        )
        yield harness


async def _save(client: httpx.AsyncClient, zone: str, token: str | None = None) -> httpx.Response:
    data = {"time_zone": zone}
    if token is not None:
        data["csrf_token"] = token
    return await client.post("/preferences", data=data)


async def test_time_zone_round_trip_is_audited(app: Harness) -> None:
    client = await app.session_client(Role.VIEWER, "zone-viewer")
    page = await client.get("/preferences")
    assert page.status_code == 200
    assert 'data-zone="UTC"' in page.text
    assert '<option value="Europe/Berlin">' in page.text

    saved = await _save(client, "Europe/Berlin", await csrf_token(client, "/preferences"))
    assert saved.status_code == 303
    assert saved.headers["location"] == "/preferences"
    assert app.sql("SELECT time_zone FROM ops.users WHERE username = 'zone-viewer'") == [
        ("Europe/Berlin",)
    ]
    again = await client.get("/preferences")
    assert 'data-zone="Europe/Berlin"' in again.text
    assert '<option value="Europe/Berlin" selected>' in again.text
    assert "Preferences · Europe/Berlin" in again.text  # the header says it on every page
    audit = app.sql(
        "SELECT actor, action, target_type, details FROM ops.audit_log "
        "WHERE action = 'preferences.time_zone' ORDER BY chain_seq DESC LIMIT 1"
    )
    actor, _, target_type, details = audit[0]
    assert (actor, target_type) == ("zone-viewer", "user")
    assert details == {"from": "UTC", "to": "Europe/Berlin"}


async def test_unknown_zone_is_refused_by_name(app: Harness) -> None:
    client = await app.session_client(Role.OPS, "zone-ops")
    token = await csrf_token(client, "/preferences")
    refused = await _save(client, "Mars/Olympus_Mons", token)
    assert refused.status_code == 400
    assert "Mars/Olympus_Mons" in refused.text
    extra = await client.post(
        "/preferences", data={"time_zone": "UTC", "theme": "dark", "csrf_token": token}
    )
    assert extra.status_code == 400
    assert "theme" in extra.text
    assert app.sql("SELECT time_zone FROM ops.users WHERE username = 'zone-ops'") == [("UTC",)]
    # Without the CSRF token nothing changes either.
    forged = await _save(client, "Asia/Tokyo")
    assert forged.status_code == 403
    assert app.sql("SELECT time_zone FROM ops.users WHERE username = 'zone-ops'") == [("UTC",)]
    # The database refuses a zone written around the API.
    with pytest.raises(psycopg.errors.CheckViolation):
        app.sql("UPDATE ops.users SET time_zone = 'Mars/Olympus_Mons' WHERE username = 'zone-ops'")


async def test_pages_show_times_in_the_viewers_zone_and_json_stays_utc(app: Harness) -> None:
    client = await app.session_client(Role.SUPER_ADMIN, "zone-admin")
    await _save(client, "Europe/Berlin", await csrf_token(client, "/preferences"))
    page = await client.get(f"/service-checks?{RANGE}&service=booking_api")
    assert page.status_code == 200, page.text
    assert column(page.text, 2) == ["2026-12-05 14:03:07 +01:00", "2026-07-01 12:00:00 +02:00"]
    # The range is said in the viewer's zone too.
    assert "2026-06-01 02:00:00 → 2026-12-31 01:00:00 Europe/Berlin" in page.text

    key = app.key_client(Role.SUPER_ADMIN, user="zone-admin")
    data = (await key.get(f"/api/v1/service-checks?{RANGE}&service=booking_api")).json()
    assert [r["checked_at"] for r in data["data"]] == [WINTER.isoformat(), SUMMER.isoformat()]


async def test_range_control_writes_grafanas_grammar(app: Harness) -> None:
    client = await app.session_client(Role.SUPER_ADMIN, "range-admin")
    page = await client.get("/service-checks?from=now-1h&to=now&service=booking_api&ok=false")
    assert page.status_code == 200
    assert re.search(r'<p class="range" id="range-applied"><strong>Last 1 hour</strong>', page.text)
    links = dict(re.findall(r'<a href="([^"]+)" data-quick="([^"]+)"', page.text))
    by_label = {label: href.replace("&amp;", "&") for href, label in links.items()}
    for label, expected in {
        "Last 1 hour": ("now-1h", "now"),
        "Last 7 days": ("now-7d", "now"),
        "Today so far": ("now/d", "now"),
        "Yesterday": ("now-1d/d", "now-1d/d"),
    }.items():
        url = urlsplit(by_label[label])
        query = dict(parse_qsl(url.query))
        assert url.path == "/service-checks"
        assert (query["from"], query["to"]) == expected
        assert (query["service"], query["ok"]) == ("booking_api", "false")  # filters ride along
        assert (await client.get(by_label[label])).status_code == 200
    # The absolute form without its script: wall times in the viewer's zone, and the zone.
    absolute = await client.get(
        "/service-checks?from=2026-12-05T14:03:00&to=2026-12-05T14:04:00"
        "&timezone=Europe/Berlin&service=booking_api"
    )
    assert absolute.status_code == 200
    assert len(table(absolute.text)) == 1  # 13:03:07 UTC is 14:03:07 in Berlin
    refused = await client.get("/service-checks?from=now-1h&timezone=Mars/Olympus_Mons")
    assert refused.status_code == 400
    assert "Mars/Olympus_Mons" in refused.text
    assert "timezone" in refused.text


async def test_detail_pages_show_money_and_badges(app: Harness) -> None:
    app.sql("INSERT INTO platform.customers (id, name, email) VALUES (9001, 'Ada', 'a@x.org')")
    app.sql(
        "INSERT INTO platform.transactions (id, customer_id, amount_cents, currency, status, psp,"
        " psp_id, payment_intent_id, livemode, created_at, card_brand) VALUES "
        "(9001, 9001, 8775000, 'NGN', 'partially_refunded', 'paystack', 'ps_9001', 'pi_9001',"
        " true, %s, 'amex'), "
        "(9002, 9001, 1500, 'KWD', 'captured', 'stripe', 'ch_9002', 'pi_9002', true, %s, 'visa')",
        (WINTER, WINTER),
    )
    app.sql(
        "INSERT INTO platform.refunds (transaction_id, amount_cents, reason, created_at)"
        " VALUES (9001, 250000, 'requested_by_customer', %s)",
        (WINTER,),
    )
    client = await app.session_client(Role.SUPER_ADMIN, "money-admin")
    listing = await client.get(f"/payments?{RANGE}")
    rows = {row[0]: row for row in table(listing.text)}
    assert rows["9001"][2:4] == ["partially refunded", "87,750.00 NGN"]
    assert rows["9002"][3] == "1.500 KWD"
    assert 'class="badge badge-partially_refunded"' in listing.text
    assert "American Express" in rows["9001"]
    detail = await client.get("/payments/9001")
    assert detail.status_code == 200
    refunds = detail.text.split('id="section-refunds"')[1]
    assert "2,500.00 NGN" in refunds
    assert "2026-12-05 13:03:07 UTC" in refunds
    key = app.key_client(Role.SUPER_ADMIN, user="money-admin")
    record = (await key.get("/api/v1/payments/9001")).json()
    assert record["payment"]["amount_cents"] == 8775000
    assert record["payment"]["card_brand"] == "amex"
