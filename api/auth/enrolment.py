"""Two-factor enrolments waiting for their first code: the secret offered at sign-in to an
account without a device, kept server side until a code made from it comes back.

The secret lives in Redis only (sealed, like the stored ones), under a random id; the
browser holds a signed cookie naming that id together with the user's id and session
version. Nobody can swap in a secret of their own between the page and the code: the
cookie carries no secret, and a Redis record that does not match the cookie's user and
version is no enrolment. The record expires after ``api.totp_enrolment_ttl_seconds`` and is
deleted when the device is saved.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, TimestampSigner
from redis.asyncio import Redis

from api.auth import totp
from api.runtime import Runtime
from core.sealed_secrets import SecretBox, UnreadableSecret

COOKIE = "opsdeck_enrolment"
PATH = "/login/enrol"  # the page, and the only path the cookie is sent to
_SEPARATOR = "."  # token_urlsafe ids and decimal numbers never contain it


def enrolment_key(enrolment_id: str) -> str:
    return f"opsdeck:totp-enrolment:{enrolment_id}"


@dataclass(frozen=True)
class Enrolment:
    """A device offered to ``username``; ``secret`` is the clear secret, for the page."""

    id: str
    user_id: int
    version: int
    username: str
    secret: str
    next_path: str


class EnrolmentStore:
    def __init__(
        self, redis: Redis, signer: TimestampSigner, box: SecretBox, ttl_seconds: float
    ) -> None:
        self._redis = redis
        self._signer = signer
        self._box = box
        self.ttl = int(ttl_seconds)

    async def start(
        self, user_id: int, version: int, username: str, next_path: str
    ) -> tuple[Enrolment, str]:
        """A new secret offered to the user, and the cookie naming it."""
        enrolment = Enrolment(
            secrets.token_urlsafe(32), user_id, version, username, totp.new_secret(), next_path
        )
        record = {
            "user_id": user_id,
            "version": version,
            "username": username,
            "secret": self._box.seal(enrolment.secret),
            "next": next_path,
        }
        await self._redis.set(enrolment_key(enrolment.id), json.dumps(record), ex=self.ttl)
        payload = _SEPARATOR.join((enrolment.id, str(user_id), str(version)))
        return enrolment, self._signer.sign(payload).decode()

    async def load(self, cookie: str | None) -> Enrolment | None:
        """The enrolment a cookie names, while Redis holds it for the same user and version."""
        if not cookie:
            return None
        try:
            payload = self._signer.unsign(cookie, max_age=self.ttl).decode()
        except BadSignature:
            return None
        enrolment_id, user_id, version = [*payload.split(_SEPARATOR), "", ""][:3]
        raw = await self._redis.get(enrolment_key(enrolment_id)) if enrolment_id else None
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            if (int(record["user_id"]), int(record["version"])) != (int(user_id), int(version)):
                return None
            return Enrolment(
                enrolment_id,
                int(user_id),
                int(version),
                str(record["username"]),
                self._box.open(str(record["secret"])),
                str(record["next"]),
            )
        except (ValueError, TypeError, KeyError, UnreadableSecret):
            return None  # not a record this API wrote: no enrolment

    async def discard(self, enrolment: Enrolment) -> None:
        await self._redis.delete(enrolment_key(enrolment.id))


def store_of(runtime: Runtime) -> EnrolmentStore:
    """The running API's enrolments, signed under a key derived for them alone."""
    signer = TimestampSigner(runtime.keys.derive("opsdeck.totp-enrolment"))
    return EnrolmentStore(
        runtime.redis, signer, runtime.secret_box, runtime.api.totp_enrolment_ttl_seconds
    )
