"""Driving one-click actions the way a browser does: the confirmation page, then its form."""

from __future__ import annotations

import re

import httpx

KEY_RE = re.compile(r'name="idempotency_key" value="([^"]+)"')
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


async def confirmation(client: httpx.AsyncClient, path: str) -> tuple[str, str, str]:
    """(page text, CSRF token, idempotency key) of an action's confirmation page."""
    page = await client.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text[:300]
    key, csrf = KEY_RE.search(page.text), CSRF_RE.search(page.text)
    assert key, page.text[:300]
    assert csrf, page.text[:300]
    return page.text, csrf.group(1), key.group(1)


async def submit(
    client: httpx.AsyncClient,
    path: str,
    csrf: str,
    key: str,
    reason: str = "testing actions",
    fields: dict[str, str] | None = None,
) -> httpx.Response:
    """The confirmation form as a browser posts it; ``fields`` are the action's own inputs
    (a note's text replaces the reason when ``fields`` hold ``note``)."""
    form = {"csrf_token": csrf, "idempotency_key": key, **(fields or {})}
    if "note" not in form:
        form["reason"] = reason
    return await client.post(path, data=form, headers={"Accept": "text/html"})


async def click(
    client: httpx.AsyncClient,
    path: str,
    reason: str = "testing actions",
    fields: dict[str, str] | None = None,
) -> httpx.Response:
    _, csrf, key = await confirmation(client, path)
    return await submit(client, path, csrf, key, reason, fields)
