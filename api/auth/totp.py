"""TOTP two-factor codes (RFC 6238, 30 s steps, one step of clock drift either way). A code
is accepted once: the step it matched is remembered in Redis until it can no longer match."""

from __future__ import annotations

import hmac
import time
from datetime import UTC, datetime

import pyotp
import segno
from redis.asyncio import Redis

ISSUER = "opsdeck"
DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def provisioning_qr(secret: str, username: str) -> segno.QRCode:
    """The QR code an authenticator app scans: the ``otpauth://`` URI of the secret."""
    return segno.make(provisioning_uri(secret, username), error="m", micro=False)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step ``code`` belongs to, if it is valid now."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    moment = time.time() if now is None else now
    current = totp.timecode(datetime.fromtimestamp(moment, UTC))
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


async def verify_code(redis: Redis, user_id: int, secret: str, code: str) -> bool:
    step = matching_step(secret, code)
    if step is None:
        return False
    # A replayed code (same user, same step) is refused.
    fresh = await redis.set(
        f"opsdeck:totp-used:{user_id}:{step}", "1", nx=True, ex=30 * (2 * DRIFT_STEPS + 2)
    )
    return bool(fresh)
