"""Driving the endpoint pages' forms as a browser does: the confirmation page, then its form
with a reason; and reading what a page or the database says about an endpoint."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from tests.incidents.actions_client import confirmation, submit

ONCE_RE = re.compile(r'<code class="secret" data-once="[^"]+">([^<]+)</code>')
WILL_RE = re.compile(r'<p class="will">([^<]+)</p>')
COUNT_RE = re.compile(r"^(\d+) deliveries would be replayed")
REASON = "partner asked for it, ticket 4711"


async def change(
    client: httpx.AsyncClient, path: str, fields: dict[str, str] | None = None
) -> httpx.Response:
    """Open the change's confirmation page and submit it with ``fields`` and a reason."""
    _, csrf, key = await confirmation(client, path)
    return await submit(client, path, csrf, key, REASON, fields)


def shown_once(page: httpx.Response) -> str:
    found = ONCE_RE.search(page.text)
    assert found, page.text[:500]
    return html.unescape(found.group(1))


def will(page_text: str) -> str:
    found = WILL_RE.search(page_text)
    assert found, page_text[:500]
    return html.unescape(found.group(1))


def dry_run_count(page_text: str) -> int:
    found = COUNT_RE.match(will(page_text))
    assert found, will(page_text)
    return int(found.group(1))


def endpoint_fields(**values: str) -> dict[str, str]:
    """Every field of the endpoint form, as a browser sends them (empty when not given)."""
    names = ("url", "event_types", "description", "retry_schedule", "rate_limit")
    return {name: values.get(name, "") for name in names}


def row(rows: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    assert len(rows) == 1, rows
    return rows[0]
