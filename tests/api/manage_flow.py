"""What the user and API key tests share: an API whose sessions follow the database at
once, and a confirmed change made the way a person makes it (the confirmation page, its
CSRF token and idempotency key, a reason) or an API client does (JSON, Idempotency-Key)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from tests.api.conftest import CSRF_RE, Harness
from tests.incidents.actions_client import KEY_RE

REASON = "account administration test"
SHOWN_ONCE_RE = re.compile(r'<code class="secret" data-once="[^"]+">([^<]+)</code>')
HTML = {"Accept": "text/html"}


async def confirm(client: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    """Open the confirmation page at ``path`` and submit it with ``fields`` and a reason."""
    page = await client.get(path, headers=HTML)
    assert page.status_code == 200, page.text[:500]
    key, csrf = KEY_RE.search(page.text), CSRF_RE.search(page.text)
    assert key, page.text[:500]
    assert csrf, page.text[:500]
    form = {"csrf_token": csrf.group(1), "idempotency_key": key.group(1), "reason": REASON}
    return await client.post(path, data={**form, **fields}, headers=HTML)


async def resubmit(client: httpx.AsyncClient, path: str, sent: httpx.Response) -> httpx.Response:
    """The same form posted again (a double submit), from the request ``sent`` made."""
    body = sent.request.content.decode()
    headers = {**HTML, "Content-Type": "application/x-www-form-urlencoded"}
    return await client.post(path, content=body, headers=headers)


def shown_once(page: httpx.Response) -> str:
    found = SHOWN_ONCE_RE.search(page.text)
    assert found, page.text[:800]
    return found.group(1)


async def by_key(client: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    """A change run by an API client: JSON, its own Idempotency-Key, no confirmation page."""
    headers = {"Idempotency-Key": f"test-{uuid.uuid4().hex}", "Accept": "application/json"}
    return await client.post(path, json={"reason": REASON, **fields}, headers=headers)


def audit_rows(api: Harness, action: str, **where: str) -> list[dict[str, Any]]:
    """Audit rows of ``action`` whose details hold ``where``, oldest first."""
    rows = api.sql(
        "SELECT actor, outcome, target_type, target_id, reason, details FROM ops.audit_log "
        "WHERE action = %s ORDER BY chain_seq",
        (action,),
    )
    named = [
        dict(
            zip(
                ("actor", "outcome", "target_type", "target_id", "reason", "details"),
                r,
                strict=True,
            )
        )
        for r in rows
    ]
    return [r for r in named if all(str(r["details"].get(k)) == v for k, v in where.items())]


def user_id(api: Harness, username: str) -> int:
    return int(api.sql("SELECT id FROM ops.users WHERE username = %s", (username,))[0][0])
