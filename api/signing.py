"""Everything the API signs, from the one secret key: session cookies, CSRF tokens, page
cursors and the keyed hash that stands in for masked IP addresses. Each use has its own
derived key, so a value signed for one purpose is worthless for another."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import date, datetime
from typing import Any

from itsdangerous import BadSignature, TimestampSigner, URLSafeSerializer

from api.problems import invalid


class Keys:
    def __init__(self, secret: str) -> None:
        self._secret = secret
        self.session = TimestampSigner(secret, salt="opsdeck.session")
        self._cursor = URLSafeSerializer(secret, salt="opsdeck.cursor")
        self.pii = self.derive("opsdeck.pii")
        self._csrf = self.derive("opsdeck.csrf")

    def derive(self, purpose: str) -> bytes:
        return hmac.new(self._secret.encode(), purpose.encode(), hashlib.sha256).digest()

    def csrf_token(self, binding: str) -> str:
        """The CSRF token of a browser: bound to its session cookie, or before sign-in to
        its CSRF nonce cookie."""
        digest = hmac.new(self._csrf, binding.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def encode_cursor(self, scope: str, key: list[Any]) -> str:
        """An opaque page cursor: the last row's sort key, valid only for ``scope`` (the
        listing and its sort order)."""
        values = [v.isoformat() if isinstance(v, datetime | date) else v for v in key]
        return str(self._cursor.dumps({"s": scope, "k": values}))

    def decode_cursor(self, scope: str, token: str) -> list[Any]:
        try:
            payload = self._cursor.loads(token)
        except (BadSignature, ValueError, json.JSONDecodeError):
            raise invalid("cursor", "not a cursor this API issued") from None
        if not isinstance(payload, dict) or payload.get("s") != scope:
            raise invalid("cursor", "issued for another listing or sort order")
        key = payload.get("k")
        if not isinstance(key, list):
            raise invalid("cursor", "malformed")
        return key
