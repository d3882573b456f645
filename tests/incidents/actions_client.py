"""Driving one-click actions the way a browser does: the confirmation page, then its form."""

from __future__ import annotations

import re
import uuid
from typing import Any

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


async def post_change(
    client: httpx.AsyncClient, path: str, token: str, fields: dict[str, Any]
) -> httpx.Response:
    """A confirmed change as any principal sends it: JSON with an Idempotency-Key by API
    key, else the form of its confirmation page (which a refused principal does not get)."""
    if "authorization" in client.headers:
        headers = {"Idempotency-Key": f"matrix-{uuid.uuid4().hex}"}
        return await client.post(path, json=fields, headers=headers)
    page = await client.get(path, headers={"Accept": "text/html"})
    found = KEY_RE.search(page.text) if page.status_code == 200 else None
    form = {"csrf_token": token, "idempotency_key": found.group(1) if found else "", **fields}
    return await client.post(path, data=form, headers={"Accept": "text/html"})
