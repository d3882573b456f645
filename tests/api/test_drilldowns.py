"""The drilldowns answer what plain SQL over the raw rows answers: every filter, the
test/live separation, Grafana's time range, the details (retry history, refunds,
chargebacks, fraud, double bookings, stack traces, timelines), usage, and CSV exports."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from api.rbac import Role
from tests.api.conftest import Harness, api_settings, running

pytestmark = pytest.mark.anyio

DAY_MS = 86_400_000


def _window() -> tuple[int, int, datetime, datetime]:
    end = datetime.now(UTC)
    start = end - timedelta(hours=36)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000), start, end


async def _ids(api: Harness, path: str) -> list[Any]:
    async with api.key_client(Role.SUPER_ADMIN) as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


def _sql_ids(api: Harness, query: str, *params: Any) -> list[Any]:
    return [r[0] for r in api.sql(query, params)]


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("status=failed", "status = 'failed'"),
        (
            "status=refunded&status=partially_refunded",
            "status IN ('refunded', 'partially_refunded')",
        ),
        ("attempt=2", "attempt = 2"),
        ("retried=true", "attempt > 1"),
        ("retried=false&status=failed", "attempt = 1 AND status = 'failed'"),
        ("currency=EUR&currency=GBP", "currency IN ('EUR', 'GBP')"),
        ("card_brand=amex&status=captured", "card_brand = 'amex' AND status = 'captured'"),
        ("failure_code=insufficient_funds", "failure_code = 'insufficient_funds'"),
        ("psp=paystack&currency=NGN", "psp = 'paystack' AND currency = 'NGN'"),
        ("livemode=false", "NOT livemode"),
        ("livemode=all&status=voided", "status = 'voided' AND livemode IN (true, false)"),
    ],
)
async def test_payment_filters(api: Harness, query: str, where: str) -> None:
    start_ms, end_ms, start, end = _window()
    live = "" if "livemode" in query else " AND livemode"
    expected = _sql_ids(
        api,
        f"SELECT id FROM platform.transactions WHERE created_at BETWEEN %s AND %s AND {where}{live} "
        "ORDER BY created_at DESC, id DESC LIMIT 500",
        start,
        end,
    )
    assert expected, where
    assert (
        await _ids(api, f"/api/v1/payments?from={start_ms}&to={end_ms}&limit=500&{query}")
        == expected
    )


async def test_payment_search_by_psp_id_intent_or_customer(api: Harness) -> None:
    row = api.sql(
        "SELECT id, psp_id, payment_intent_id, customer_id FROM platform.transactions "
        "WHERE livemode ORDER BY id DESC LIMIT 1"
    )[0]
    tx_id, psp_id, intent, customer = row
    base = "/api/v1/payments?from=now-3d&limit=500"
    assert await _ids(api, f"{base}&q={psp_id}") == [tx_id]
    assert tx_id in await _ids(api, f"{base}&q={intent}")
    by_customer = _sql_ids(
        api,
        "SELECT id FROM platform.transactions WHERE livemode AND (customer_id = %s OR id = %s) "
        "AND created_at > now() - interval '3 days' ORDER BY created_at DESC, id DESC",
        customer,
        customer,
    )
    assert await _ids(api, f"{base}&q={customer}") == by_customer
    assert await _ids(api, f"{base}&q=ch_does_not_exist") == []


async def test_mode_is_shown_and_never_mixed_unless_asked(api: Harness) -> None:
    async with api.key_client(Role.SUPER_ADMIN) as client:
        for query, mode, banner in (
            ("", "live", "LIVE MODE"),
            ("livemode=false", "test", "TEST MODE"),
            ("livemode=all", "all", "LIVE + TEST"),
            ("var-livemode=true,false", "all", "LIVE + TEST"),
        ):
            page = (await client.get(f"/api/v1/payments?limit=500&{query}")).json()
            assert page["mode"] == mode
            modes = {row["livemode"] for row in page["data"]}
            assert modes == {"live": {True}, "test": {False}, "all": {True, False}}[mode]
            assert banner in (await client.get(f"/payments?{query}")).text
            assert (await client.get(f"/api/v1/api-logs?limit=5&{query}")).json()["mode"] == mode


async def test_grafana_link_with_time_range_and_variables(api: Harness) -> None:
    start_ms, end_ms, start, end = _window()
    expected = _sql_ids(
        api,
        "SELECT id FROM platform.transactions WHERE created_at BETWEEN %s AND %s AND "
        "status = 'failed' AND NOT livemode ORDER BY created_at DESC, id DESC LIMIT 50",
        start,
        end,
    )
    async with api.key_client(Role.SUPER_ADMIN) as client:
        link = f"/payments?orgId=1&from={start_ms}&to={end_ms}&var-status=failed&var-livemode=false&var-psp=$__all"
        page = await client.get(link)
        assert page.status_code == 200
        assert "TEST MODE" in page.text
        assert all(f'/payments/{i}"' in page.text for i in expected)
        relative = (await client.get("/api/v1/payments?from=now-6h&to=now")).json()["range"]
        span = datetime.fromisoformat(relative["to"]) - datetime.fromisoformat(relative["from"])
        assert span == timedelta(hours=6)
        day = (await client.get("/api/v1/payments?from=now-1d/d&to=now-1d/d")).json()["range"]
        assert day["from"].endswith("T00:00:00+00:00")
        assert day["to"].endswith("T23:59:59.999999+00:00")


async def test_payment_detail_retry_history_refunds_chargebacks_fraud(api: Harness) -> None:
    intent, last_id = api.sql(
        "SELECT payment_intent_id, max(id) FROM platform.transactions GROUP BY 1 "
        "HAVING count(*) >= 3 ORDER BY 2 DESC LIMIT 1"
    )[0]
    refunded = api.sql("SELECT transaction_id FROM platform.refunds ORDER BY id DESC LIMIT 1")[0][0]
    api.sql(
        "INSERT INTO platform.chargebacks (transaction_id, amount_cents, reason) VALUES (%s, 100, 'fraudulent')",
        (refunded,),
    )
    api.sql("UPDATE platform.transactions SET fraud_score = 85 WHERE id = %s", (last_id,))
    async with api.key_client(Role.FINANCE) as client:
        detail = (await client.get(f"/api/v1/payments/{last_id}")).json()
        attempts = api.sql(
            "SELECT id, attempt FROM platform.transactions WHERE payment_intent_id = %s ORDER BY attempt",
            (intent,),
        )
        assert [(r["id"], r["attempt"]) for r in detail["retry_history"]] == attempts
        assert detail["fraud"]["score"] == 85
        assert detail["fraud"]["risk_level"] == "high"
        assert "Fraud score 85 at or above 70" in detail["fraud"]["flags"]
        assert any("failed attempts on this payment intent" in f for f in detail["fraud"]["flags"])
        other = (await client.get(f"/api/v1/payments/{refunded}")).json()
        refunds = api.sql(
            "SELECT id, amount_cents FROM platform.refunds WHERE transaction_id = %s", (refunded,)
        )
        assert [(r["id"], r["amount_cents"]) for r in other["refunds"]] == refunds
        assert [c["reason"] for c in other["chargebacks"]] == ["fraudulent"]
        page = (await client.get(f"/payments/{last_id}")).text
        assert "Retry history of the payment intent" in page
        assert "high" in page


async def test_reconciliation_ledger_matches_seed_001_query(api: Harness) -> None:
    start_ms, end_ms, start, end = _window()
    expected = api.sql(
        "SELECT t.id, t.amount_cents - coalesce(p.amount_cents, 0), "
        "CASE WHEN p.psp_id IS NULL THEN 'missing' ELSE 'mismatch' END "
        "FROM platform.transactions t LEFT JOIN platform.psp_transactions p ON p.psp_id = t.psp_id "
        "WHERE t.created_at BETWEEN %s AND %s AND t.livemode "
        "AND (p.psp_id IS NULL OR p.amount_cents <> t.amount_cents) ORDER BY t.created_at DESC, t.id DESC",
        (start, end),
    )
    assert expected
    rows: list[tuple[Any, ...]] = []
    cursor = None
    async with api.key_client(Role.FINANCE) as client:
        while True:
            url = f"/api/v1/reconciliation?from={start_ms}&to={end_ms}&reconciliation=mismatch&reconciliation=missing&limit=7"
            page = (await client.get(url + (f"&cursor={cursor}" if cursor else ""))).json()
            rows += [(r["id"], r["delta_cents"], r["reconciliation"]) for r in page["data"]]
            if not (cursor := page["next_cursor"]):
                break
    assert rows == expected


async def test_bounded_scans_end_short_pages_with_a_cursor(api_db: str, api_redis: str) -> None:
    settings = api_settings(api_db, api_redis, scan_budget_rows=500)
    async with running(settings) as harness, harness.key_client(Role.FINANCE) as client:
        page = (
            await client.get("/api/v1/reconciliation?from=now-2d&reconciliation=missing")
        ).json()
    assert page["partial"] is True
    assert page["next_cursor"]


async def test_refunds_and_payouts(api: Harness) -> None:
    async with api.key_client(Role.FINANCE) as client:
        refunds = (await client.get("/api/v1/refunds?from=now-3d&limit=500&livemode=all")).json()[
            "data"
        ]
        assert [r["id"] for r in refunds] == _sql_ids(
            api, "SELECT id FROM platform.refunds ORDER BY created_at DESC, id DESC LIMIT 500"
        )
        payouts = (await client.get("/api/v1/payouts?limit=500")).json()["data"]
        assert any(p["status"] == "scheduled" for p in payouts)  # the default range looks ahead
        held = (await client.get("/api/v1/payouts?status=held&from=now-30d&limit=500")).json()[
            "data"
        ]
        assert held
        assert all(p["hold_reason"] for p in held)


async def test_bookings_filters_and_double_booking_detail(api: Harness) -> None:
    # The latest confirmed booking whose slot, and the 15 minutes after it, no other
    # confirmed booking of its resource touches (the history holds double bookings too).
    booking = api.sql(
        "SELECT id, resource_id, location_id, staff_id, customer_id, start_at, end_at "
        "FROM platform.bookings b WHERE status = 'confirmed' AND staff_id IS NOT NULL "
        "AND NOT EXISTS (SELECT FROM platform.bookings o WHERE o.resource_id = b.resource_id "
        "AND o.id <> b.id AND o.confirmed_at IS NOT NULL "
        "AND o.start_at < b.end_at + interval '15 minutes' AND b.start_at < o.end_at) "
        "ORDER BY id DESC LIMIT 1"
    )[0]
    booking_id, resource, location, staff, customer, start_at, end_at = booking
    for query, where in (
        (f"location_id={location}", f"location_id = {location}"),
        (f"staff_id={staff}&status=confirmed", f"staff_id = {staff} AND status = 'confirmed'"),
        (f"resource_id={resource}", f"resource_id = {resource}"),
        ("status=cancelled&status=failed", "status IN ('cancelled', 'failed')"),
    ):
        expected = _sql_ids(
            api,
            f"SELECT id FROM platform.bookings WHERE created_at > now() - interval '3 days' AND {where} "
            "ORDER BY created_at DESC, id DESC LIMIT 500",
        )
        assert expected, where
        assert await _ids(api, f"/api/v1/bookings?from=now-3d&limit=500&{query}") == expected

    other = api.sql(
        "INSERT INTO platform.bookings (resource_id, customer_id, location_id, start_at, end_at, status, "
        "amount_cents, currency, confirmed_at) VALUES (%s, %s, %s, %s, %s, 'confirmed', 100, 'EUR', now()) "
        "RETURNING id",
        (
            resource,
            customer,
            location,
            start_at + timedelta(minutes=15),
            end_at + timedelta(minutes=15),
        ),
    )[0][0]
    async with api.key_client(Role.OPS) as client:
        detail = (await client.get(f"/api/v1/bookings/{other}")).json()
        (conflict,) = detail["double_bookings"]
        assert conflict["other_id"] == booking_id
        assert conflict["overlap_minutes"] == int((end_at - start_at).total_seconds() // 60) - 15
        assert conflict["resolution"] == "unresolved"
        assert conflict["confirmed_first"] == "other"
        assert detail["booking"]["double_booked"] is True
        flagged = await _ids(api, "/api/v1/bookings?from=now-1h&double_booked=true")
        assert other in flagged
        api.sql(
            "UPDATE platform.bookings SET status = 'cancelled', cancelled_at = now() WHERE id = %s",
            (other,),
        )
        detail = (await client.get(f"/api/v1/bookings/{booking_id}")).json()
        assert [c["resolution"] for c in detail["double_bookings"]] == ["resolved"]
        assert "Double bookings" in (await client.get(f"/bookings/{booking_id}")).text


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("status_class=5xx", "status_code >= 500"),
        ("status=404&status=409", "status_code IN (404, 409)"),
        (
            "method=POST&route=/v1/payment_intents",
            "method = 'POST' AND route = '/v1/payment_intents'",
        ),
        ("path_prefix=/v1/bookings/bk_1", "path LIKE '/v1/bookings/bk\\_1%%'"),
        ("error_type=card_error", "error_type = 'card_error'"),
        ("min_duration_ms=1000", "duration_ms >= 1000"),
        ("q=lock wait timeout", "error_message ILIKE '%%lock wait timeout%%'"),
        ('q="Bad gateway" -calendar', "false"),
    ],
)
async def test_api_log_filters_and_search(api: Harness, query: str, where: str) -> None:
    expected = [
        r[0]
        for r in api.sql(
            f"SELECT id FROM platform.api_logs WHERE started_at > now() - interval '3 days' AND livemode "
            f"AND {where} ORDER BY started_at DESC, id DESC LIMIT 500"
        )
    ]
    assert expected or where == "false"
    assert await _ids(api, f"/api/v1/api-logs?from=now-3d&limit=500&{query}") == expected


async def test_api_log_by_key_account_and_request_id(api: Harness) -> None:
    request_id, key, account = api.sql(
        "SELECT request_id, api_key_id, account_id FROM platform.api_logs WHERE api_key_id IS NOT NULL "
        "AND livemode ORDER BY id DESC LIMIT 1"
    )[0]
    for query, where in (
        (f"api_key_id={key}", f"api_key_id = '{key}'"),
        (f"account_id={account}", f"account_id = '{account}'"),
        (f"request_id={request_id}", f"request_id = '{request_id}'"),
        (f"q={request_id}", f"request_id = '{request_id}'"),
    ):
        expected = _sql_ids(
            api,
            f"SELECT id FROM platform.api_logs WHERE started_at > now() - interval '3 days' AND livemode "
            f"AND {where} ORDER BY started_at DESC, id DESC LIMIT 500",
        )
        assert expected
        assert await _ids(api, f"/api/v1/api-logs?from=now-3d&limit=500&{query}") == expected


async def test_api_log_detail_trace_bodies_context_and_timeline(api: Harness) -> None:
    long_body = '{"note": "' + "z" * 10_000 + '"}'
    api.sql(
        "INSERT INTO platform.api_logs (request_id, started_at, method, path, route, status_code, duration_ms, "
        "account_id, api_key_id, livemode, request_body, response_body, error_type, error_message, stack_trace, "
        "user_id, idempotency_key) SELECT 'req_detail_' || n, now() - make_interval(mins => n), 'POST', "
        "'/v1/payment_intents', '/v1/payment_intents', 500, 30, 'acct_timeline', 'key_t', true, %s, '{}', "
        "'api_error', 'Internal server error', 'Traceback (most recent call last):\n  boom', 'usr_1', 'idk_1' "
        "FROM generate_series(1, 3) n",
        (long_body,),
    )
    async with api.key_client(Role.OPS) as client:
        detail = (await client.get("/api/v1/api-logs/req_detail_2")).json()
        request = detail["request"]
        assert request["stack_trace"].startswith("Traceback")
        assert request["request_body_truncated"] is True
        assert len(request["request_body"]) == api.settings.api.body_preview_bytes
        assert request["user_id"].startswith("id#")  # the end user, as a keyed hash
        assert request["account_id"] == "acct_timeline"
        assert [e["request_id"] for e in detail["timeline"]] == [
            "req_detail_3",
            "req_detail_2",
            "req_detail_1",
        ]
        account = (await client.get("/api/v1/accounts/acct_timeline/timeline")).json()
        assert [e["request_id"] for e in account["timeline"]] == [
            "req_detail_3",
            "req_detail_2",
            "req_detail_1",
        ]
        assert (await client.get("/api/v1/accounts/acct_nobody/timeline")).status_code == 404
        assert "Traceback" in (await client.get("/api-logs/req_detail_2")).text


async def test_usage_report_matches_the_logs(api: Harness) -> None:
    await api.fold_usage()
    folded_until = api.sql("SELECT folded_until FROM ops.api_usage_rollup")[0][0]
    expected = {
        (day.isoformat(), account): calls
        for day, account, calls in api.sql(
            "SELECT (started_at AT TIME ZONE 'UTC')::date, account_id, count(*) FROM platform.api_logs "
            "WHERE livemode AND account_id IS NOT NULL AND updated_at < %s GROUP BY 1, 2",
            (folded_until,),
        )
    }
    got: dict[tuple[str, str], int] = {}
    cursor = None
    async with api.key_client(Role.FINANCE) as client:
        while True:
            url = "/api/v1/usage?from=now-5d&group=account&limit=500" + (
                f"&cursor={cursor}" if cursor else ""
            )
            page = (await client.get(url)).json()
            got.update(
                {
                    (r["period"], r["account_id"]): r["calls"]
                    for r in page["data"]
                    if r["account_id"]
                }
            )
            if not (cursor := page["next_cursor"]):
                break
        assert got == expected
        monthly = (
            await client.get("/api/v1/usage?from=now-5d&period=month&group=account&limit=500")
        ).json()
        assert monthly["next_cursor"] is None
        assert (
            sum(r["calls"] for r in monthly["data"])
            == api.sql(
                "SELECT count(*) FROM platform.api_logs WHERE livemode AND updated_at < %s "
                "AND started_at >= date_trunc('month', now() - interval '5 days')",
                (folded_until,),
            )[0][0]
        )
        export = (await client.get("/api/v1/usage/export?from=now-5d&group=key")).text
        header = export.splitlines()[0]
        assert (
            header
            == "period,account_id,api_key_id,route,calls,client_errors,server_errors,avg_duration_ms"
        )


async def test_incidents_list(api: Harness) -> None:
    api.sql(
        "INSERT INTO ops.incidents (title, severity, status, services, started_at, owner) VALUES "
        "('Booking API down', 'critical', 'triggered', '{booking_api}', now() - interval '1 hour', 'ana'), "
        "('Drift above 0.5%', 'high', 'resolved', '{payments}', now() - interval '2 days', 'ben')"
    )
    async with api.key_client(Role.VIEWER) as client:
        rows = (await client.get("/api/v1/incidents?service=booking_api")).json()["data"]
        assert [r["title"] for r in rows] == ["Booking API down"]
        rows = (await client.get("/api/v1/incidents?status=resolved")).json()["data"]
        assert [r["title"] for r in rows] == ["Drift above 0.5%"]


async def test_csv_export_is_complete_and_defused(api: Harness) -> None:
    api.sql(
        "INSERT INTO platform.api_logs (request_id, started_at, method, path, route, status_code, duration_ms, "
        "livemode, error_message) VALUES ('req_formula', now(), 'GET', '/v1/x', '/v1/x', 400, 1, true, "
        "'=HYPERLINK(\"http://evil\")')"
    )
    start_ms, end_ms, start, end = _window()
    async with api.key_client(Role.SUPER_ADMIN) as client:
        response = await client.get(
            f"/api/v1/payments/export?from={start_ms}&to={end_ms}&livemode=all"
        )
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(response.text)))
        count = api.sql(
            "SELECT count(*) FROM platform.transactions WHERE created_at BETWEEN %s AND %s",
            (start, end),
        )[0][0]
        assert len(rows) == count
        logs = (await client.get("/api/v1/api-logs/export?from=now-1h&request_id=req_formula")).text
        assert "'=HYPERLINK" in logs
        empty = (await client.get("/api/v1/payments/export?q=ch_nothing")).text
        assert empty.strip() == ",".join(
            (await client.get("/api/v1/payments?limit=1")).json()["data"][0].keys()
        )


async def test_detail_pages_show_the_mode_of_their_record(api: Harness) -> None:
    test_payment = api.sql("SELECT max(id) FROM platform.transactions WHERE NOT livemode")[0][0]
    live_request = api.sql("SELECT max(request_id) FROM platform.api_logs WHERE livemode")[0][0]
    async with api.key_client(Role.SUPER_ADMIN) as client:
        assert "TEST MODE" in (await client.get(f"/payments/{test_payment}")).text
        assert "LIVE MODE" in (await client.get(f"/api-logs/{live_request}")).text


def _page_link(page: str, label: str) -> dict[str, str]:
    """The query of the list page's link named ``label``."""
    found = re.search(r'<a href="([^"]*)"[^>]*>' + label, page)
    assert found, f"no {label} link"
    return dict(parse_qsl(urlsplit(html.unescape(found.group(1))).query))


async def test_the_next_and_first_pages_keep_the_page_size(api: Harness) -> None:
    async with api.key_client(Role.SUPER_ADMIN) as client:
        following = _page_link((await client.get("/payments?from=now-3d&limit=3")).text, "Next")
        assert following["limit"] == "3"
        second = await client.get("/api/v1/payments", params=following)
        assert second.status_code == 200, second.text
        assert len(second.json()["data"]) == 3
        again = (await client.get("/payments", params=following)).text
        assert _page_link(again, "« First")["limit"] == "3"
        assert "limit" not in _page_link((await client.get("/payments?from=now-3d")).text, "Next")


async def test_grafana_double_booking_link(api: Harness) -> None:
    booking = api.sql("SELECT max(id) FROM platform.bookings")[0][0]
    async with api.key_client(Role.VIEWER) as client:
        detail = (await client.get(f"/api/v1/double-bookings/{booking}")).json()
        assert list(detail) == ["double_bookings", "booking", "masked"]
        assert detail["booking"]["id"] == booking
        assert (await client.get(f"/double-bookings/{booking}")).status_code == 200


@pytest.mark.parametrize(
    "q",
    [
        "Timeout",
        "lock-wait",
        '"Bad gateway" -calendar',
        "declined or gateway",
        "INTERNAL  server",
        "bookings_77",
        "payment_intents 'timeout'",  # a quote inside the lexemes the index is asked for
        "c:\\temp timeout",
    ],
)
async def test_search_never_drops_a_match(api: Harness, q: str) -> None:
    expected = _sql_ids(
        api,
        "SELECT id FROM platform.api_logs l WHERE started_at > now() - interval '3 days' AND livemode "
        "AND to_tsvector('simple', request_id || ' ' || coalesce(request_body, '') || ' ' || "
        "coalesce(response_body, '') || ' ' || coalesce(error_message, '')) "
        "@@ websearch_to_tsquery('simple', %s) ORDER BY started_at DESC, id DESC LIMIT 500",
        q,
    )
    assert (
        await _ids(api, "/api/v1/api-logs?" + urlencode({"from": "now-3d", "limit": 500, "q": q}))
        == expected
    )


async def _last_3_days(
    api: Harness, client: httpx.AsyncClient, listing: str, where: str, at: str
) -> list[dict[str, Any]]:
    """What ``/api/v1/<listing>`` lists from the last 3 days: some rows, and exactly those
    ``where`` selects from the platform table of the same name, newest ``at`` first."""
    rows: list[dict[str, Any]] = (
        await client.get(f"/api/v1/{listing}&from=now-3d&limit=500")
    ).json()["data"]
    assert rows
    table = listing.partition("?")[0].replace("-", "_")
    assert [row["id"] for row in rows] == _sql_ids(
        api,
        f"SELECT id FROM platform.{table} WHERE {where} "
        f"AND {at} >= now() - interval '3 days' ORDER BY {at} DESC, id DESC LIMIT 500",
    )
    return rows


async def test_calendar_syncs_and_support_tickets_as_the_command_center_links_them(
    api: Harness,
) -> None:
    async with api.key_client(Role.OPS) as client:
        failed = await _last_3_days(
            api, client, "calendar-syncs?result=failed", "status = 'failed'", "started_at"
        )
        assert all(s["error"] for s in failed)
        await _last_3_days(
            api, client, "support-tickets?status=open", "status = 'open'", "opened_at"
        )
        page = await client.get("/support-tickets?status=open")
        assert page.status_code == 200
        assert "Support tickets" in page.text
    async with api.key_client(Role.FINANCE) as client:
        assert (await client.get("/api/v1/calendar-syncs")).status_code == 403


async def test_a_boolean_filter_survives_the_pages_own_links(api: Harness) -> None:
    """The page's next, first and export links carry a true/false filter as the route reads
    it back (``true``, not Python's ``True``), so following them answers 200."""
    async with api.key_client(Role.SUPER_ADMIN) as client:
        page = await client.get("/bookings?double_booked=false&from=now-30d&to=now&limit=5")
        assert page.status_code == 200, page.text[:300]
        links = [
            href.replace("&amp;", "&")
            for href in re.findall(r'href="(/(?:api/v1/)?bookings[^"]*\?[^"]+)"', page.text)
        ]
        assert any("cursor=" in link for link in links), links
        for link in links:
            assert "double_booked=false" in link, link
            answer = await client.get(link)
            assert answer.status_code == 200, f"{link}: {answer.text[:200]}"
