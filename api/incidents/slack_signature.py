"""Slack's request signature (v0): ``v0=hex(hmac_sha256(secret, "v0:{ts}:{body}"))`` in
``X-Slack-Signature``, ``X-Slack-Request-Timestamp`` within the tolerance of now (replays
of old requests are refused), compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

from api.problems import Problem

VERSION = "v0"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance: float,
) -> None:
    if not secret:
        # Under an empty key anybody can compute the signature: refuse them all.
        raise Problem(401, "Slack buttons are off: the signing secret is empty")
    if not timestamp or not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise Problem(401, "missing or malformed X-Slack-Request-Timestamp")
    if abs(now - int(timestamp)) > tolerance:
        raise Problem(401, "X-Slack-Request-Timestamp is outside the allowed window")
    expected = sign(secret, timestamp, body)
    if signature is None or not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Problem(401, "the Slack signature does not match")
