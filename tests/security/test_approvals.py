"""People, not principals, against a real ``opsdeck api`` over HTTP (real PostgreSQL and
Redis): the two-person rule for payouts cannot be met by one person through their own API
keys (a first, a second, one before and after rotation); a request left unapproved past
``incidents.approval_ttl_seconds`` cannot be approved; a disabled user's key is refused; a
Slack click counts only from a Slack user mapped to an opsdeck user, acts with that user's
role, and is audited under that username."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import psycopg
import pytest
import redis

from api.incidents.slack_signature import sign
from tests.api.conftest import CSRF_RE, PASSWORD, SECRET, serving
from tests.authenticator import Authenticator
from tests.conftest import opsdeck_env, run_opsdeck, scratch_database
from tests.incidents.actions_client import click
from tests.incidents.conftest import AM_TOKEN, alert, notification

pytestmark = pytest.mark.anyio
SLACK_SECRET = "approvals-slack-signing-secret-0123456789"
SUSPEND = "/actions/suspend-payouts?alertname=PaymentReconciliationDriftSuspendPayouts"
RESUME = "/actions/resume-payouts"
EVENTS = "SELECT count(*) FROM ops.webhook_messages WHERE event_type = %s"
TEAM = "T0SEC"
CHAIN_KEY = "approvals-audit-chain-key-0123456789abcdef"
USERS = (
    ("fin-a", "finance"),
    ("fin-b", "finance"),
    ("fin-c", "finance"),
    ("olga", "ops"),
    ("vera", "viewer"),
)


@dataclass(frozen=True)
class Stack:
    base: str
    db_url: str
    env: dict[str, str]
    app: Authenticator

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``opsdeck ARGS`` as an admin runs it, with the API's settings."""
        return run_opsdeck(*args, env=self.env, timeout=120, stdin=stdin)

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def key(self, user: str, role: str = "finance") -> str:
        """A key of ``user`` made with ``opsdeck api-keys create --user``; the token."""
        out = self.cli("api-keys", "create", "--user", user, "--name", "auto", "--role", role)
        return out.strip().splitlines()[-1]

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def stack(
    admin_url: str, template_db: str, services: dict[str, str], tmp_path_factory: Any
) -> Iterator[Stack]:
    log: Path = tmp_path_factory.mktemp("approvals") / "api.log"
    # A TOTP code is spent per user id and step in Redis, and ids repeat across databases.
    store = redis.Redis.from_url(services["redis"])
    store.flushdb()
    store.close()
    with scratch_database(admin_url, template_db) as db_url:
        env = opsdeck_env(
            DATABASE_URL=db_url,
            REDIS_URL=services["redis"],
            OPSDECK_API__SECRET_KEY=SECRET,
            OPSDECK_API__COOKIE_SECURE="false",  # plain HTTP on loopback
            OPSDECK_INCIDENTS__ENGINE_ENABLED="false",
            OPSDECK_INCIDENTS__ALERTMANAGER_TOKEN=AM_TOKEN,
            OPSDECK_INCIDENTS__SLACK_SIGNING_SECRET=SLACK_SECRET,
            OPSDECK_AUDIT__CHAIN_KEY=CHAIN_KEY,
        )
        stack = Stack("", db_url, env, Authenticator())
        for name, role in USERS:
            argv = ("users", "add", name, "--role", role, "--totp", "--password-stdin")
            stack.app.add(name, stack.cli(*argv, stdin=PASSWORD))
        with serving(env, log) as base:
            yield Stack(base, db_url, env, stack.app)


@asynccontextmanager
async def _browser(stack: Stack, username: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in as ``username`` through the real sign-in form."""
    async with stack.client() as client:
        page = await client.get("/login")
        token = CSRF_RE.search(page.text)
        assert token, page.text[:300]
        code = stack.app.code(username)
        form = {"username": username, "password": PASSWORD, "code": code, "csrf_token": token[1]}
        signed_in = await client.post("/login", data=form)
        assert signed_in.status_code == 303, signed_in.text[:300]
        yield client


async def _approve_by_key(stack: Stack, token: str, path: str = SUSPEND) -> httpx.Response:
    async with stack.client(token) as client:
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        return await client.post(path, json={"reason": "approving the drift"}, headers=headers)


def _pending(stack: Stack) -> list[tuple[Any, ...]]:
    return stack.sql(
        "SELECT kind, requested_by FROM ops.payout_suspensions WHERE status = 'pending'"
    )


async def test_one_person_cannot_approve_their_own_payout_request_with_any_key(
    stack: Stack,
) -> None:
    async with _browser(stack, "fin-a") as browser:
        asked = await click(browser, SUSPEND, "drift above 1% for an hour")
    assert asked.status_code == 200, asked.text[:500]
    assert "awaits a second approver" in asked.text
    first, second = stack.key("fin-a"), stack.key("fin-a")
    refusals = {"own key": await _approve_by_key(stack, first)}
    refusals["second key"] = await _approve_by_key(stack, second)
    prefix = first.split("_")[1]
    rotated = stack.cli("api-keys", "rotate", prefix).strip().splitlines()[-1]
    assert (await _approve_by_key(stack, first)).status_code == 401  # the old key is dead
    refusals["rotated key"] = await _approve_by_key(stack, rotated)
    for how, answer in refusals.items():
        assert answer.status_code == 409, (how, answer.text)
        assert "second approver is required" in answer.json()["detail"], how
    assert stack.sql(EVENTS, ("payouts.suspended",)) == [(0,)]
    assert _pending(stack) == [("suspend", "fin-a")]
    failed = stack.sql(
        "SELECT actor FROM ops.audit_log WHERE action = 'action.suspend-payouts' "
        "AND outcome = 'failed' ORDER BY chain_seq"
    )
    assert [a for (a,) in failed][-3:] == [
        f"fin-a (api-key:{first.split('_')[1]})",
        f"fin-a (api-key:{second.split('_')[1]})",
        f"fin-a (api-key:{rotated.split('_')[1]})",
    ]
    # Another person approves, with their own key.
    approved = await _approve_by_key(stack, stack.key("fin-b"))
    assert approved.status_code == 200, approved.text
    assert "approved by fin-b (api-key:" in approved.json()["outcome"]
    assert stack.sql(EVENTS, ("payouts.suspended",)) == [(1,)]
    people = stack.sql(
        "SELECT r.username, a.username FROM ops.payout_suspensions p "
        "JOIN ops.users r ON r.id = p.requested_by_user "
        "JOIN ops.users a ON a.id = p.approved_by_user WHERE p.status = 'approved'"
    )
    assert people == [("fin-a", "fin-b")]


async def test_an_expired_request_cannot_be_approved(stack: Stack) -> None:
    stack.sql("DELETE FROM ops.payout_suspensions WHERE status = 'pending'")
    async with _browser(stack, "fin-a") as browser:
        asked = await click(browser, RESUME, "the drift is explained")
    assert asked.status_code == 200, asked.text[:500]
    # The request waited longer than incidents.approval_ttl_seconds (one hour by default).
    stack.sql(
        "UPDATE ops.payout_suspensions SET requested_at = now() - interval '61 minutes' "
        "WHERE status = 'pending'"
    )
    token = stack.key("fin-b")
    late = await _approve_by_key(stack, token, RESUME)
    assert late.status_code == 200, late.text
    assert late.json()["result"]["approved"] is False  # a new request, not an approval
    assert stack.sql(EVENTS, ("payouts.resumed",)) == [(0,)]
    states = stack.sql("SELECT requested_by, status FROM ops.payout_suspensions ORDER BY id")
    by_key = f"fin-b (api-key:{token.split('_')[1]})"
    assert states[-2:] == [("fin-a", "expired"), (by_key, "pending")]


def test_a_key_is_made_for_an_existing_user_within_their_role(stack: Stack) -> None:
    cases = {
        "a role above the user's": (("--user", "fin-c", "--role", "super_admin"), "exceed"),
        "nobody": (("--user", "nobody", "--role", "viewer"), "no user 'nobody'"),
    }
    for why, (args, said) in cases.items():
        done = stack.run("api-keys", "create", "--name", "x", *args)
        assert done.returncode == 1, why
        assert said in done.stderr, (why, done.stderr)
    listed = stack.cli("api-keys", "list", "--user", "fin-a")
    rows = listed.splitlines()[1:]
    assert len(rows) >= 3  # the keys of the first test: two, and one rotated
    assert all(row.startswith("fin-a ") for row in rows), listed


async def test_a_disabled_users_key_is_refused(stack: Stack) -> None:
    token = stack.key("fin-c")
    async with stack.client(token) as client:
        assert (await client.get("/api/v1/payments")).status_code == 200
        stack.cli("users", "disable", "fin-c")
        refused = await client.get("/api/v1/payments")
    assert refused.status_code == 401
    assert "disabled" in refused.json()["detail"]


def _slack_click(user_id: str, incident: int) -> tuple[bytes, dict[str, str]]:
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "example"},
        # The display name is the clicker's to choose: it must never decide who acts.
        "user": {"id": user_id, "username": "olga", "name": "olga"},
        "actions": [
            {
                "action_id": "acknowledge",
                "value": str(incident),
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(SLACK_SECRET, stamp, body),
    }
    return body, headers


async def _incident(stack: Stack, name: str) -> int:
    body = notification(f"group-{name}", alert(name, uuid.uuid4().hex[:16]))
    async with stack.client(AM_TOKEN) as client:
        answer = await client.post("/hooks/alertmanager", json=body)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["incident"])


async def _post_click(stack: Stack, user_id: str, incident: int) -> httpx.Response:
    body, headers = _slack_click(user_id, incident)
    async with stack.client() as client:
        return await client.post("/hooks/slack/interactions", content=body, headers=headers)


def _state(stack: Stack, incident: int) -> tuple[Any, ...]:
    (row,) = stack.sql(
        "SELECT status, acknowledged_by FROM ops.incidents WHERE id = %s", (incident,)
    )
    return row


async def test_slack_clicks_count_only_from_mapped_users_with_the_role(stack: Stack) -> None:
    incident = await _incident(stack, "SlackMapped")
    stack.cli("slack-users", "map", TEAM, "U0VIEWER", "vera")
    for slack_user, why in (("U0STRANGER", "not linked"), ("U0VIEWER", "does not hold")):
        refused = await _post_click(stack, slack_user, incident)
        assert refused.status_code == 200, refused.text
        assert refused.json()["response_type"] == "ephemeral"
        assert why in refused.json()["text"]
    await anyio.sleep(1)  # a background action, had one started, would have acted by now
    assert _state(stack, incident) == ("triggered", None)
    assert stack.sql("SELECT count(*) FROM ops.action_requests WHERE action = 'acknowledge'") == [
        (0,)
    ]

    stack.cli("slack-users", "map", TEAM, "U0OLGA", "olga")
    assert "olga" in stack.cli("slack-users", "list")
    accepted = await _post_click(stack, "U0OLGA", incident)
    assert accepted.status_code == 200, accepted.text
    audited = (
        "SELECT actor, actor_role, outcome FROM ops.audit_log WHERE action = 'action.acknowledge'"
    )
    # The click acts in the background, and its audit row follows the acknowledgement.
    deadline = time.monotonic() + 20
    while not stack.sql(audited) and time.monotonic() < deadline:
        await anyio.sleep(0.2)
    assert _state(stack, incident) == ("acknowledged", "olga")
    assert stack.sql(audited) == [("olga", "ops", "ok")]
    mapped = stack.sql(
        "SELECT actor, target_id FROM ops.audit_log WHERE action = 'slack_user.map' ORDER BY chain_seq"
    )
    assert [t for _, t in mapped] == [f"{TEAM}/U0VIEWER", f"{TEAM}/U0OLGA"]
