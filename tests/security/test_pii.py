"""PII stays masked on every path that bypassed the masker, against the real stack: the
``opsdeck api`` server over HTTP on a real PostgreSQL and Redis, users and keys made by the
real CLI, webhooks posted signed (and badly signed) to the public inbound routes, Grafana's
views read as Grafana's own database role, and customer refs written by a real exporter.

Each leak the issue lists is tried as an ops (or finance) user would: raw inbound webhook
bodies and headers (JSON, HTML, the rejections' CSV export), full-text search asked whether
an email or a card number is in a body, an API log's path, stack trace and user id, a support
ticket's subject, a calendar id, a refund reason; Grafana's audit view after failed
sign-ins; the double-booking panel's customer refs. A super admin's unmask grant shows its
one record as received, and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from api.pii import scrub_text
from api.queries import api_logs as api_logs_sql
from core.psp_webhooks import STRIPE_HEADER, stripe_charge_event, stripe_header
from core.settings import Settings
from simulator.inject import inject
from tests.api.conftest import SECRET, STRIPE_TEST_SECRET, serving
from tests.conftest import (
    REPO,
    TEST_SECRETS_KEY,
    opsdeck_env,
    scratch_database,
    service_url,
)
from tests.exporters.harness import db_now, exporters

pytestmark = pytest.mark.slow

PASSWORD = "a-long-enough-password-for-the-test"
CUSTOMER_REF_KEY = "customer-ref-key-for-the-security-test"
# What a payment event carries about its customer, and what a careless client sends.
EMAIL = "jane.quincy.doe@example.com"
NAME = "Jane Quincy Doe"
PHONE = "020 7946 0958"
PLUS_PHONE = "+44 20 7946 0111"
CARD = "4242424242424242"
IPV6 = "2001:db8::7:1"
IPV4 = "203.0.113.77"
SECRETS = (EMAIL, NAME, "Quincy", PHONE, PLUS_PHONE, CARD, IPV6, IPV4)
# Emails masked keep their domain: seeing it proves the scan looked at the masked value.
MASKED_EMAIL = "***@example.com"
SEARCH_ID = "req_pii_search_probe"
# A word only the probe's body holds: the control that search still works.
MARKER = "zanzibarquux"
WINDOW = "from=now-2h"


def _assert_masked(text: str) -> None:
    leaks = [secret for secret in SECRETS if secret in text]
    assert not leaks, f"unmasked PII: {leaks}"


class Stack:
    """The served API, its database and a way to make users and keys through the CLI."""

    def __init__(self, base: str, url: str, env: dict[str, str]) -> None:
        self.base = base
        self.url = url
        self.env = env

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def cli(self, *args: str, stdin: str = "") -> str:
        """The real CLI, as an operator runs it against this database."""
        done = subprocess.run(
            [sys.executable, "-m", "opsdeck", *args],
            input=stdin,
            env={**self.env, "DATABASE_URL": self.url},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def key(self, role: str, name: str) -> str:
        """A key of a new user ``name`` with ``role`` (super admins get TOTP)."""
        self.cli("users", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD + "\n")
        out = self.cli("api-keys", "create", "--user", name, "--name", "probe", "--role", role)
        return out.strip().splitlines()[-1]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def stack(
    admin_url: str,
    history_template: str,
    services: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    redis_url = services["redis"]
    redis.Redis.from_url(redis_url).flushdb()  # no limit counted by another module
    with scratch_database(admin_url, history_template) as url:
        env = opsdeck_env(
            DATABASE_URL=service_url(url),
            REDIS_URL=redis_url,
            OPSDECK_API__SECRET_KEY=SECRET,
            OPSDECK_API__COOKIE_SECURE="false",
            OPSDECK_API__REQUESTS_PER_MINUTE="100000",
            OPSDECK_SECRETS_KEY=TEST_SECRETS_KEY,
            OPSDECK_WEBHOOKS__STRIPE_SECRETS=json.dumps([STRIPE_TEST_SECRET]),
        )
        log = tmp_path_factory.mktemp("pii") / "api.log"
        with serving(env, log) as base:
            yield Stack(base, url, env)


def _stripe_event(event_id: str) -> bytes:
    """A charge event as Stripe sends it, with the billing details of a real customer."""
    event = stripe_charge_event(
        event_id, f"ch_{event_id}", 1250, "usd", True, True, int(time.time())
    )
    event["data"]["object"]["billing_details"] = {"name": NAME, "email": EMAIL, "phone": PHONE}
    event["data"]["object"]["receipt_email"] = EMAIL
    event["data"]["object"]["description"] = f"card {CARD} call {PLUS_PHONE} from {IPV6}"
    return json.dumps(event).encode()


def _headers(body: bytes, secret: str = STRIPE_TEST_SECRET) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": f"shop-client/1.0 ({EMAIL})",
        "x-forwarded-for": IPV4,
        STRIPE_HEADER: stripe_header([secret], body, int(time.time())),
    }


@pytest.fixture(scope="module")
def inbound(stack: Stack) -> list[int]:
    """Two inbound events stored by the real endpoint, and one badly signed rejection."""
    ids = []
    with stack.client() as client:
        for event_id in ("evt_pii_probe_1", "evt_pii_probe_2"):
            body = _stripe_event(event_id)
            answer = client.post("/webhooks/inbound/stripe", content=body, headers=_headers(body))
            assert answer.status_code in (200, 201, 202), answer.text
            row = stack.sql(
                "SELECT id FROM ops.webhook_inbound_events WHERE event_key = %s", (event_id,)
            )
            ids.append(row[0][0])
        body = _stripe_event("evt_pii_forged")
        forged = _headers(body, "whsec_not_the_secret_0123456789")
        answer = client.post("/webhooks/inbound/stripe", content=body, headers=forged)
        assert answer.status_code == 400, answer.text
    return ids


@pytest.fixture(scope="module")
def ops_key(stack: Stack) -> str:
    return stack.key("ops", "ops-pii")


def test_inbound_webhook_bodies_and_headers_are_masked(
    stack: Stack, inbound: list[int], ops_key: str
) -> None:
    with stack.client(ops_key) as client:
        texts = []
        for path in (f"/api/v1/webhooks/inbound/{inbound[0]}", f"/webhooks/inbound/{inbound[0]}"):
            answer = client.get(path)
            assert answer.status_code == 200, answer.text
            texts.append(answer.text)
        detail = client.get(f"/api/v1/webhooks/inbound/{inbound[0]}").json()
    assert detail["masked"] is True
    assert '"evt_pii_probe_1"' in detail["event"]["body"]  # the body is there, masked
    for text in texts:
        _assert_masked(text)
    assert MASKED_EMAIL in texts[0]


def test_rejected_webhooks_are_masked_in_list_and_export(
    stack: Stack, inbound: list[int], ops_key: str
) -> None:
    with stack.client(ops_key) as client:
        texts = [
            client.get(f"/api/v1/webhook-rejections?{WINDOW}").text,
            client.get(f"/webhook-rejections?{WINDOW}").text,
            client.get(f"/api/v1/webhook-rejections/export?{WINDOW}&format=csv").text,
            client.get(f"/api/v1/webhook-rejections/export?{WINDOW}&format=json").text,
        ]
    assert "evt_pii_forged" in texts[2]  # the rejection is in the export ...
    for text in texts:
        _assert_masked(text)  # ... with its sample and headers masked
    assert "***" in texts[2]


def test_an_unmask_grant_shows_its_one_webhook_as_received(
    stack: Stack, inbound: list[int], ops_key: str
) -> None:
    admin = stack.key("super_admin", "admin-pii")
    reason = "dispute 4411: the PSP's billing details are needed"
    grant = {"subject_type": "webhook_inbound", "subject_id": str(inbound[0]), "reason": reason}
    with stack.client(admin) as client:
        granted = client.post("/api/v1/unmask", json=grant)
        assert granted.status_code == 201, granted.text
        shown = client.get(f"/api/v1/webhooks/inbound/{inbound[0]}").json()
        other = client.get(f"/api/v1/webhooks/inbound/{inbound[1]}").text
    assert shown["masked"] is False
    assert EMAIL in shown["event"]["body"]
    assert NAME in shown["event"]["body"]
    _assert_masked(other)
    with stack.client(ops_key) as client:  # the grant is the admin's alone
        _assert_masked(client.get(f"/api/v1/webhooks/inbound/{inbound[0]}").text)


@pytest.fixture(scope="module")
def probe_log(stack: Stack) -> str:
    """An API log with PII in its bodies, path, stack trace and user id."""
    body = json.dumps({"email": EMAIL, "card": CARD, "note": MARKER, "name": NAME})
    stack.sql(
        "INSERT INTO platform.api_logs (request_id, started_at, method, path, route, "
        "status_code, duration_ms, account_id, ip_address, livemode, request_body, "
        "response_body, error_message, stack_trace, user_id) VALUES (%s, now() - interval "
        "'5 minutes', 'POST', %s, '/v1/customers/{id}', 500, 12, 'acct_pii', %s, true, %s, "
        "'{}', 'internal error', %s, %s)",
        (
            SEARCH_ID,
            f"/v1/customers/{EMAIL}/cards",
            IPV4,
            body,
            f'Traceback:\n  File "app.py", line 9\nLookupError: no customer {EMAIL} ({PHONE})',
            EMAIL,
        ),
    )
    return SEARCH_ID


def _search(client: httpx.Client, query: str) -> list[str]:
    answer = client.get("/api/v1/api-logs", params={"from": "now-2h", "q": query, "limit": 500})
    assert answer.status_code == 200, answer.text
    return [row["request_id"] for row in answer.json()["data"]]


def test_search_cannot_tell_whether_an_email_or_card_is_in_a_body(
    stack: Stack, probe_log: str, ops_key: str
) -> None:
    with stack.client(ops_key) as client:
        assert probe_log in _search(client, MARKER)  # search works on the rest of the body
        for secret in (EMAIL, CARD, f'"{EMAIL}"', "4242 4242 4242 4242", NAME):
            assert probe_log not in _search(client, secret), secret
    with psycopg.connect(stack.url) as conn:  # and the index holds that document
        conn.execute("SET enable_seqscan = off")
        query = (
            f"EXPLAIN SELECT 1 FROM platform.api_logs l WHERE {api_logs_sql.SEARCH_DOCUMENT} @@ "
            "websearch_to_tsquery('simple'::regconfig, %(q)s)"
        )
        plan = "\n".join(r[0] for r in conn.execute(query, {"q": MARKER}).fetchall())
    assert "api_logs_search_document" in plan, plan


def test_api_log_path_stack_trace_and_user_are_masked(
    stack: Stack, probe_log: str, ops_key: str
) -> None:
    with stack.client(ops_key) as client:
        detail = client.get(f"/api/v1/api-logs/{probe_log}").json()
        texts = [
            json.dumps(detail),
            client.get(f"/api-logs/{probe_log}").text,
            client.get(f"/api/v1/api-logs?{WINDOW}&account_id=acct_pii").text,
            client.get(f"/api-logs?{WINDOW}&account_id=acct_pii").text,
            client.get(f"/api/v1/api-logs/export?{WINDOW}&account_id=acct_pii").text,
            client.get("/api/v1/accounts/acct_pii/timeline").text,
        ]
    request = detail["request"]
    assert request["path"] == f"/v1/customers/{MASKED_EMAIL}/cards"
    assert MASKED_EMAIL in request["stack_trace"]
    assert request["user_id"].startswith("id#")
    for text in texts:
        _assert_masked(text)


def test_ticket_subjects_calendar_ids_and_refund_reasons_are_masked(
    stack: Stack, ops_key: str
) -> None:
    stack.sql(
        "INSERT INTO platform.support_tickets (customer_id, subject, status, opened_at) "
        "VALUES (1, %s, 'open', now() - interval '10 minutes')",
        (f"Refund please: {EMAIL} / {PHONE}",),  # a name in free text is not recognisable
    )
    stack.sql(
        "INSERT INTO platform.calendar_syncs (provider, calendar_id, resource_id, started_at, "
        "finished_at, status, error) VALUES ('google', %s, 1, now() - interval '10 minutes', "
        "now() - interval '9 minutes', 'failed', %s)",
        (EMAIL, f"403 for calendar {EMAIL}"),
    )
    live = stack.sql("SELECT id FROM platform.transactions WHERE livemode ORDER BY id LIMIT 1")
    stack.sql(
        "INSERT INTO platform.refunds (transaction_id, amount_cents, reason, created_at) "
        "VALUES (%s, 100, %s, now() - interval '10 minutes')",
        (live[0][0], f"customer {EMAIL} called from {PHONE}"),
    )
    finance = stack.key("finance", "finance-pii")
    pages = {
        ops_key: ("support-tickets", "calendar-syncs", "calendar-sync-failures"),
        finance: ("refunds",),
    }
    for token, views in pages.items():
        with stack.client(token) as client:
            for view in views:
                for path in (
                    f"/api/v1/{view}?{WINDOW}&limit=500",
                    f"/{view}?{WINDOW}&limit=500",
                    f"/api/v1/{view}/export?{WINDOW}&format=csv",
                ):
                    answer = client.get(path)
                    assert answer.status_code == 200, (path, answer.text)
                    _assert_masked(answer.text)
                    assert MASKED_EMAIL in answer.text, path  # the row was there, masked


def _as_grafana(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET ROLE opsdeck_grafana")
    return conn


def test_grafana_audit_view_drops_failed_sign_in_text_and_reasons(stack: Stack) -> None:
    typed = "hunter2-typed-into-the-user-box"
    stack.cli("users", "add", "totp-pii", "--role", "ops", "--totp", "--password-stdin",
              stdin=PASSWORD + "\n")  # fmt: skip
    with httpx.Client(base_url=stack.base, timeout=30) as client:
        for username, password, code in ((typed, "x", ""), ("totp-pii", PASSWORD, "000000")):
            page = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token, page.text
            form = {"username": username, "password": password, "code": code}
            answer = client.post("/login", data={**form, "csrf_token": token.group(1)})
            assert answer.status_code == 401, answer.text
    logged = stack.sql(
        "SELECT actor, reason FROM ops.audit_log WHERE action = 'sign_in' AND outcome <> 'ok'"
    )
    assert (typed, "bad credentials") in logged  # the API's own audit keeps the details
    assert ("totp-pii", "bad two-factor code") in logged
    with _as_grafana(stack.url) as conn:
        rows = conn.execute(
            "SELECT actor, actor_role, reason FROM ops.grafana_audit_trail "
            "WHERE action = 'sign_in' AND outcome <> 'ok'"
        ).fetchall()
    assert len(rows) >= 2
    shown = json.dumps(rows)
    for hidden in (typed, "two-factor", "credentials"):
        assert hidden not in shown
    assert {row[2] for row in rows} == {None}


def test_grafana_customer_refs_are_keyed(stack: Stack, tmp_path: Path) -> None:
    inject("double-booking", stack.url, stack.url, Settings().thresholds, minutes=5, seed=3)
    with exporters(stack.url, tmp_path, OPSDECK_EXPORTER__CUSTOMER_REF_KEY=CUSTOMER_REF_KEY) as (
        exporter,
    ):
        exporter.wait_caught_up(db_now(stack.url))
    ids = dict(stack.sql("SELECT booking_id, customer_id FROM ops.kpi_booking_conflicts"))
    with _as_grafana(stack.url) as conn:
        refs = conn.execute(
            "SELECT booking_id, customer_ref FROM ops.grafana_recent_double_bookings"
        ).fetchall()
    assert refs
    for booking, ref in refs:
        customer = str(ids[booking])
        keyed = hmac.new(CUSTOMER_REF_KEY.encode(), customer.encode(), hashlib.sha256)
        assert ref == "cus_" + keyed.hexdigest()[:8]
        assert ref != "cus_" + hashlib.md5(customer.encode()).hexdigest()[:8]


ADVERSARIAL = {
    "local part without @": "a" * 100_000,
    "dotted local part": "a." * 50_000,
    "encoded @ runs": "a%40" * 25_000,
    "long dotted domain": "a@" + "a." * 50_000,
    "digits": "1" * 100_000,
    "spaced digits": "1 " * 50_000,
    "dashed digits": "1-" * 50_000,
    "colons": ":" * 100_000,
    "hex groups": "a:" * 50_000,
    "escaped name value": '"name": "' + "\\\\" * 50_000,
    "name keys": '"name":' * 14_000,
}


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=list(ADVERSARIAL))
def test_masking_100_kb_of_adversarial_text_is_linear(text: str) -> None:
    """A backtracking pattern takes minutes on these (the patterns before took over 30 s on
    the first and the third); linear ones take about 0.1 s. The bound leaves room for a
    busy machine and cannot be met by a quadratic pattern."""
    started = time.perf_counter()
    scrub_text(text, b"k" * 32)
    assert time.perf_counter() - started < 3.0


def test_free_text_masks_names_phones_ipv6_and_emails_in_paths() -> None:
    body = json.dumps({"billing_details": {"name": NAME, "phone": "5550109999"}})
    text = f"{body} GET /v1/customers/jane%40example.com {IPV6} call {PHONE} or (555) 010-9999"
    scrubbed = scrub_text(text, b"k" * 32)
    for secret in (NAME, "5550109999", "jane%40", IPV6, PHONE, "010-9999"):
        assert secret not in scrubbed, secret
    assert scrub_text("created 1700000000", b"k" * 32) == "created 1700000000"  # not a phone


def test_the_stored_document_is_the_masked_one(stack: Stack, probe_log: str) -> None:
    """What the search reads is the document 0018_masked_search defines, computed anew:
    the column is generated from it, and a row written after the migration holds it."""
    path = REPO / "core" / "migrations" / "versions" / "0018_masked_search.py"
    spec = importlib.util.spec_from_file_location("masked_search", path)
    assert spec is not None
    assert spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with psycopg.connect(stack.url) as conn:
        stored, computed, lexemes = conn.execute(
            f"SELECT l.search_document::text, ({migration.masked_document().replace('%', '%%')})::text, "
            f"array_to_string(tsvector_to_array({api_logs_sql.SEARCH_DOCUMENT}), ' ') "
            "FROM platform.api_logs l WHERE l.request_id = %s",
            (probe_log,),
        ).fetchone() or (None, None, None)
    assert stored is not None
    assert stored == computed
    assert MARKER.lower() in lexemes.split()
    for secret in ("jane", EMAIL.split("@", maxsplit=1)[0].lower(), "4242"):
        assert secret not in lexemes.split(), secret
