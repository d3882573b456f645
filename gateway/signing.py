"""Standard Webhooks signatures for outbound messages.

Each attempt is signed afresh (``webhook-timestamp`` is the attempt's time) with every active
secret of the endpoint: ``webhook-signature`` then carries one ``v1,<base64>`` per secret,
space-separated, so receivers keep verifying with the old secret during a rotation.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache

from standardwebhooks.webhooks import Webhook

from core.sealed_secrets import SecretBox

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 24
USER_AGENT = "opsdeck-webhooks/1"
# How much of a secret lists show (the prefix and four characters), stored beside the
# sealed secret so that showing it needs no key.
HINT_CHARS = 10


def new_secret() -> str:
    """A fresh ``whsec_`` secret: 24 random bytes, base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def stored(secret: str, box: SecretBox) -> dict[str, str]:
    """The columns a new secret is stored in: sealed (core.sealed_secrets), and its hint."""
    return {"secret": box.seal(secret), "hint": secret[:HINT_CHARS]}


@lru_cache(maxsize=4096)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)


def signature(secrets_: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value for ``body`` under every secret given."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return " ".join(_signer(s).sign(msg_id, moment, body) for s in secrets_)


def headers(secrets_: Sequence[str], msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """Every header of one attempt."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets_, msg_id, timestamp, body),
    }


def body_sha256(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()
