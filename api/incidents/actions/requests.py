"""Idempotency of actions: keys the server mints for its confirmation pages (signed, so a
form cannot invent one), keys API clients send, and the ``ops.action_requests`` row that
makes a double submit run the effect once and answer the second with the first's result."""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from api.incidents.queries import actions as sql
from api.problems import Problem
from api.signing import Keys

Conn = psycopg.AsyncConnection[Any]
CLIENT_KEY = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")


def _signature(keys: Keys, action: str, nonce: str) -> str:
    digest = hmac.new(keys.derive("opsdeck.action"), f"{action}:{nonce}".encode(), "sha256")
    return base64.urlsafe_b64encode(digest.digest()[:18]).decode()


def mint(keys: Keys, action: str) -> str:
    """A fresh key for one confirmation page of ``action``."""
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_signature(keys, action, nonce)}"


def check_minted(keys: Keys, action: str, key: str | None) -> str:
    nonce, _, signature = (key or "").partition(".")
    if not nonce or not hmac.compare_digest(signature, _signature(keys, action, nonce)):
        raise Problem(
            400,
            "missing or foreign idempotency key: open the confirmation page and submit it",
            invalid_params=[("idempotency_key", "not minted by this server for this action")],
        )
    return f"form:{key}"


def check_client(key: str | None, actor: str) -> str:
    if key is None or not CLIENT_KEY.match(key):
        raise Problem(
            400,
            "send an Idempotency-Key header (8-128 characters: letters, digits, _ . : -)",
            invalid_params=[("Idempotency-Key", "missing or malformed")],
        )
    return f"key:{actor}:{key}"


@dataclass(frozen=True)
class Previous:
    status: str
    result: dict[str, Any]


async def claim(
    conn: Conn, key: str, action: str, actor: str, target: str, reason: str
) -> Previous | None:
    """None: this request runs the effect. Otherwise the earlier request's outcome."""
    params = {"key": key, "action": action, "actor": actor, "target": target, "reason": reason}
    if await (await conn.execute(sql.CLAIM_REQUEST, params)).fetchone():
        return None
    row = await (await conn.execute(sql.EXISTING_REQUEST, {"key": key})).fetchone()
    if row is None:  # the first request failed and released its key meanwhile
        return await claim(conn, key, action, actor, target, reason)
    if row[0] != action or row[1] != actor:
        raise Problem(409, "this idempotency key was used for another action")
    return Previous(str(row[2]), dict(row[3] or {}))


async def finish(conn: Conn, key: str, status: str, result: dict[str, Any]) -> None:
    await conn.execute(sql.FINISH_REQUEST, {"key": key, "status": status, "result": Jsonb(result)})


async def release(conn: Conn, key: str) -> None:
    """A failed effect frees its key, so the same click may be retried."""
    await conn.execute(sql.FORGET_REQUEST, {"key": key})
