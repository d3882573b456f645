"""The drilldowns Grafana points at beyond the seed's lists: stuck bookings (exactly what
opsdeck_bookings_unprocessed counts), chargebacks (list and detail, masked by role) and
calendar sync failures per calendar; each answers what plain SQL over the raw rows does."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from api.rbac import Role
from core.settings import Thresholds
from tests.api.conftest import Harness, csrf_token, running
from tests.exporters import truth

pytestmark = pytest.mark.anyio

MASKED_NAME = re.compile(r"^(\S\*\*\*)( \S\*\*\*)*$")
CHARGEBACK_JOIN = "platform.chargebacks cb JOIN platform.transactions t ON t.id = cb.transaction_id"


def _window() -> tuple[int, int, datetime, datetime]:
    end = datetime.now(UTC)
    start = end - timedelta(hours=36)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000), start, end


async def _all(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    """Every row of a listing, page after page by its cursor."""
    rows: list[dict[str, Any]] = []
    url: str | None = path
    while url is not None:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        rows += page["data"]
        cursor = page["next_cursor"]
        url = None if cursor is None else f"{path}&{httpx.QueryParams({'cursor': cursor})}"
    return rows


def _ids(api: Harness, query: str, *params: Any) -> list[Any]:
    return [r[0] for r in api.sql(query, params)]


# -- stuck bookings ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stuck(api: Harness) -> None:
    """Pending bookings on both sides of the threshold (one older than any time picker
    range), and a confirmed one as old as the stuck ones."""
    api.sql(
        "INSERT INTO platform.bookings (resource_id, customer_id, location_id, staff_id, "
        "start_at, end_at, status, amount_cents, currency, created_at, confirmed_at) "
        "SELECT b.resource_id, b.customer_id, b.location_id, b.staff_id, "
        "now() + interval '3 days', now() + interval '3 days 1 hour', v.status, 1500, 'EUR', "
        "now() - v.age, CASE WHEN v.status = 'confirmed' THEN now() END "
        "FROM (SELECT * FROM platform.bookings ORDER BY id LIMIT 1) b, (VALUES "
        "('pending', interval '1 hour'), ('pending', interval '100 days'), "
        "('pending', interval '30 minutes'), ('pending', interval '2 minutes'), "
        "('confirmed', interval '1 hour')) v(status, age)"
    )


def _stuck_ids(api: Harness, after_seconds: float) -> list[Any]:
    return _ids(
        api,
        "SELECT id FROM platform.bookings WHERE status = 'pending' "
        "AND created_at < now() - %s * interval '1 second' ORDER BY created_at DESC, id DESC",
        after_seconds,
    )


async def test_stuck_bookings_are_what_the_metric_counts(api: Harness, stuck: None) -> None:
    async with api.key_client(Role.OPS) as client:
        rows = await _all(client, "/api/v1/stuck-bookings?limit=2")
        linked = await _all(client, "/api/v1/stuck-bookings?from=0&to=now&limit=500")
    with psycopg.connect(api.db_url) as conn:
        counted = truth.expected(conn, api.settings)[("opsdeck_bookings_unprocessed", ())]
    after = api.settings.thresholds.unprocessed_after_seconds
    assert [r["id"] for r in rows] == [r["id"] for r in linked] == _stuck_ids(api, after)
    assert len(rows) == counted >= 3
    assert {r["status"] for r in rows} == {"pending"}
    assert min(r["pending_seconds"] for r in rows) > after
    assert max(r["pending_seconds"] for r in rows) > 99 * 86400  # no range hides the oldest


async def test_the_threshold_comes_from_the_settings(api: Harness, stuck: None) -> None:
    hour = api.settings.model_copy(
        update={"thresholds": Thresholds(unprocessed_after_seconds=3600.0)}
    )
    async with running(hour) as other, other.key_client(Role.OPS) as client:
        rows = await _all(client, "/api/v1/stuck-bookings?limit=500")
        export = await client.get("/api/v1/stuck-bookings/export?format=json")
    expected = _stuck_ids(api, 3600.0)
    assert [r["id"] for r in rows] == expected
    assert [r["id"] for r in export.json()] == expected
    assert len(expected) < len(_stuck_ids(api, 600.0))


async def test_stuck_bookings_mask_the_customer(api: Harness, stuck: None) -> None:
    async with await api.session_client(Role.SUPER_ADMIN) as client:
        rows = await _all(client, "/api/v1/stuck-bookings?limit=500")
        export = (await client.get("/api/v1/stuck-bookings/export")).text
    emails = {
        r[0]
        for r in api.sql(
            "SELECT c.email FROM platform.customers c JOIN platform.bookings b "
            "ON b.customer_id = c.id WHERE b.status = 'pending'"
        )
    }
    assert rows
    assert all(MASKED_NAME.match(r["customer_name"]) for r in rows)
    assert not any(email in export for email in emails)
    assert len(export.splitlines()) == len(rows) + 1


# -- chargebacks ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def disputes(api: Harness) -> None:
    """Chargebacks on captured charges of the last day and a half, live and test, with
    every status and reason."""
    for live, count in ((True, 120), (False, 40)):
        api.sql(
            "INSERT INTO platform.chargebacks (transaction_id, amount_cents, reason, status, "
            "created_at) SELECT id, greatest(amount_cents, 1), "
            "(ARRAY['fraudulent', 'duplicate', 'general', 'product_not_received'])[1 + id %% 4], "
            "(ARRAY['needs_response', 'under_review', 'won', 'lost'])[1 + (id / 4) %% 4], "
            "least(now() - interval '1 minute', created_at + interval '30 minutes') "
            "FROM platform.transactions WHERE captured_at IS NOT NULL AND livemode = %s "
            "AND created_at > now() - interval '34 hours' ORDER BY id LIMIT %s",
            (live, count),
        )


def _one_dispute(api: Harness) -> tuple[Any, ...]:
    return api.sql(
        "SELECT cb.id, cb.transaction_id, t.customer_id, t.booking_id FROM "
        f"{CHARGEBACK_JOIN} WHERE t.livemode AND t.booking_id IS NOT NULL "
        "ORDER BY cb.id DESC LIMIT 1"
    )[0]


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("", "true"),
        ("status=won&status=lost", "cb.status IN ('won', 'lost')"),
        ("reason=fraudulent", "cb.reason = 'fraudulent'"),
        ("psp=paystack", "t.psp = 'paystack'"),
        ("currency=NGN&currency=EUR", "t.currency IN ('NGN', 'EUR')"),
        ("livemode=false", "NOT t.livemode"),
        ("livemode=all&status=needs_response", "cb.status = 'needs_response'"),
    ],
)
async def test_chargeback_filters(api: Harness, disputes: None, query: str, where: str) -> None:
    start_ms, end_ms, start, end = _window()
    live = "" if "livemode" in query else " AND t.livemode"
    expected = _ids(
        api,
        f"SELECT cb.id FROM {CHARGEBACK_JOIN} WHERE cb.created_at BETWEEN %s AND %s "
        f"AND {where}{live} ORDER BY cb.created_at DESC, cb.id DESC",
        start,
        end,
    )
    assert expected, where
    async with api.key_client(Role.FINANCE) as client:
        rows = await _all(
            client, f"/api/v1/chargebacks?from={start_ms}&to={end_ms}&limit=30&{query}"
        )
    assert [r["id"] for r in rows] == expected


async def test_chargebacks_of_a_payment_and_of_a_customer(api: Harness, disputes: None) -> None:
    _, transaction_id, customer_id, _ = _one_dispute(api)
    async with api.key_client(Role.FINANCE) as client:
        by_payment = await _all(client, f"/api/v1/chargebacks?transaction_id={transaction_id}")
        by_customer = await _all(client, f"/api/v1/chargebacks?customer_id={customer_id}")
    assert [r["transaction_id"] for r in by_payment] == [transaction_id]
    assert {r["customer_id"] for r in by_customer} == {customer_id}
    assert (
        len(by_customer)
        == api.sql(
            f"SELECT count(*) FROM {CHARGEBACK_JOIN} WHERE t.customer_id = %s AND t.livemode "
            "AND cb.created_at > now() - interval '30 days'",
            (customer_id,),
        )[0][0]
    )


async def test_chargeback_detail_shows_its_payment_and_booking(
    api: Harness, disputes: None
) -> None:
    chargeback_id, transaction_id, customer_id, booking_id = _one_dispute(api)
    email = api.sql("SELECT email FROM platform.customers WHERE id = %s", (customer_id,))[0][0]
    async with api.key_client(Role.FINANCE) as client:
        detail = (await client.get(f"/api/v1/chargebacks/{chargeback_id}")).json()
        page = await client.get(f"/chargebacks/{chargeback_id}")
        missing = await client.get("/api/v1/chargebacks/999999999")
    assert detail["chargeback"]["id"] == chargeback_id
    assert detail["payment"]["id"] == transaction_id
    assert detail["booking"]["id"] == booking_id
    assert detail["masked"] is True
    assert MASKED_NAME.match(detail["chargeback"]["customer_name"])
    assert MASKED_NAME.match(detail["booking"]["customer_name"])
    assert email not in str(detail)
    assert email not in page.text
    assert f'href="/payments/{transaction_id}"' in page.text
    assert f'href="/bookings/{booking_id}"' in page.text
    assert "LIVE MODE" in page.text
    assert missing.status_code == 404


async def test_a_grant_unmasks_the_chargebacks_customer(api: Harness, disputes: None) -> None:
    chargeback_id, _, customer_id, _ = _one_dispute(api)
    email = api.sql("SELECT email FROM platform.customers WHERE id = %s", (customer_id,))[0][0]
    async with await api.session_client(Role.SUPER_ADMIN, "dispute-handler") as client:
        assert email not in (await client.get(f"/api/v1/chargebacks/{chargeback_id}")).text
        token = await csrf_token(client)
        grant = {
            "subject_type": "customer",
            "subject_id": str(customer_id),
            "reason": "chargeback evidence needs the cardholder's email",
        }
        response = await client.post("/api/v1/unmask", json=grant, headers={"X-CSRF-Token": token})
        assert response.status_code == 201, response.text
        detail = (await client.get(f"/api/v1/chargebacks/{chargeback_id}")).json()
    assert detail["chargeback"]["customer_email"] == email
    assert detail["booking"]["customer_email"] == email
    assert detail["masked"] is False


async def test_chargeback_export_is_masked(api: Harness, disputes: None) -> None:
    start_ms, end_ms, start, end = _window()
    async with api.key_client(Role.FINANCE) as client:
        response = await client.get(f"/api/v1/chargebacks/export?from={start_ms}&to={end_ms}")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = _ids(
        api,
        f"SELECT cb.id FROM {CHARGEBACK_JOIN} WHERE cb.created_at BETWEEN %s AND %s "
        "AND t.livemode ORDER BY cb.created_at DESC, cb.id DESC",
        start,
        end,
    )
    assert [int(r["id"]) for r in rows] == expected
    assert all(MASKED_NAME.match(r["customer_name"]) for r in rows)


# -- calendar sync failures -------------------------------------------------------------------


def _failures_by_calendar(
    api: Harness, start: datetime, end: datetime, provider: str | None = None
) -> list[tuple[Any, ...]]:
    only = "" if provider is None else f" AND provider = '{provider}'"
    return api.sql(
        "SELECT calendar_id, count(*), max(started_at), EXISTS (SELECT FROM "
        "platform.calendar_syncs o WHERE o.calendar_id = f.calendar_id AND o.status = 'ok' "
        "AND o.started_at > max(f.started_at)) FROM platform.calendar_syncs f "
        f"WHERE status = 'failed' AND started_at BETWEEN %s AND %s{only} "
        "GROUP BY calendar_id ORDER BY max(started_at) DESC, calendar_id DESC",
        (start, end),
    )


@pytest.mark.parametrize("provider", [None, "outlook"])
async def test_failures_per_calendar(api: Harness, provider: str | None) -> None:
    start_ms, end_ms, start, end = _window()
    query = f"from={start_ms}&to={end_ms}&limit=7"
    if provider:
        query += f"&provider={provider}"
    async with api.key_client(Role.VIEWER) as client:
        rows = await _all(client, f"/api/v1/calendar-sync-failures?{query}")
    expected = _failures_by_calendar(api, start, end, provider)
    assert len(expected) > 7  # more than a page: the cursor is exercised
    found = [
        (
            r["calendar_id"],
            r["failures"],
            datetime.fromisoformat(r["last_failed_at"]),
            r["recovered"],
        )
        for r in rows
    ]
    assert found == expected
    if provider:
        assert all(r["providers"] == [provider] for r in rows)


async def test_a_calendar_row_opens_its_failed_syncs(api: Harness) -> None:
    start_ms, end_ms, start, end = _window()
    async with api.key_client(Role.VIEWER) as client:
        page = await client.get(f"/calendar-sync-failures?from={start_ms}&to={end_ms}")
        link = re.search(r'href="(/calendar-syncs\?[^"]+)"', page.text)
        assert link, page.text[:500]
        target = html.unescape(link.group(1))
        shown = await _all(client, f"/api/v1{target}&limit=500")
    params = httpx.URL(target).params
    calendar = params["calendar_id"]
    assert (int(params["from"]), int(params["to"])) == (start_ms, end_ms)
    expected = _ids(
        api,
        "SELECT id FROM platform.calendar_syncs WHERE status = 'failed' AND calendar_id = %s "
        "AND started_at BETWEEN %s AND %s ORDER BY started_at DESC, id DESC",
        calendar,
        start,
        end,
    )
    assert [r["id"] for r in shown] == expected
    assert expected
    assert {r["result"] for r in shown} == {"failed"}
    assert {r["calendar_id"] for r in shown} == {calendar}
