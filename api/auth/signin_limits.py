"""How often one may try to sign in, and how long to wait after failing.

Checked before any database work: attempts per client address per window (a fixed-window
rate limit), then the backoff of the address and of the user at that address. Failures are
counted per address and per user *at that address*, so an attacker can slow down only
their own address: the same user signing in from elsewhere is not held back, and no
address locks out another. The client address is the one the trusted proxies vouch for
(:mod:`api.middleware.client_address`).
"""

from __future__ import annotations

from redis.asyncio import Redis

from api.auth.rate_limit import Backoff, BackoffPolicy, RateLimiter
from core.settings import ApiSettings


class SigninLimits:
    def __init__(self, redis: Redis, settings: ApiSettings) -> None:
        self._limiter = RateLimiter(redis)
        self._backoff = Backoff(redis)
        self._settings = settings

    def _policy(self, free_failures: int) -> BackoffPolicy:
        s = self._settings
        return BackoffPolicy(
            free_failures,
            s.login_backoff_base_seconds,
            s.login_backoff_max_seconds,
            s.login_window_seconds,
        )

    @staticmethod
    def _names(username: str, address: str) -> tuple[str, str]:
        return f"login-ip:{address}", f"login-user:{username.lower()}@{address}"

    async def wait(self, username: str, address: str) -> int | None:
        """Seconds this attempt must wait (nothing else is done for it), or None to go on."""
        waiting = await self._backoff.wait(self._names(username, address))
        if waiting is not None:
            return waiting
        s = self._settings
        verdict = await self._limiter.hit(
            f"login-ip:{address}", s.login_attempts_per_address, s.login_window_seconds
        )
        return None if verdict.allowed else verdict.retry_after

    async def failed(self, username: str, address: str) -> None:
        by_address, by_user = self._names(username, address)
        await self._backoff.failed(
            by_address, self._policy(self._settings.login_address_failures_before_backoff)
        )
        await self._backoff.failed(
            by_user, self._policy(self._settings.login_user_failures_before_backoff)
        )

    async def succeeded(self, username: str, address: str) -> None:
        """The user's own failures at this address are forgiven; the address's are not."""
        await self._backoff.succeeded(self._names(username, address)[1])
