"""An authenticator app for the tests' users: the TOTP secrets that ``opsdeck users add``
printed, and a code of each that the API has not seen yet.

The API accepts a code once (the step it belongs to is remembered) and one step of clock
drift either way, so a user signing in twice within 30 seconds types the next step's code
the second time, as a person would wait for the app's next code."""

from __future__ import annotations

import re
import time

import pyotp

from tests.conftest import run_opsdeck

STEP_SECONDS = 30
DRIFT_STEPS = 1  # api.auth.totp.DRIFT_STEPS: how far ahead of the clock a code is accepted
# What `opsdeck users add --totp` (and super admins' `add`) prints.
PRINTED_SECRET = re.compile(r"TOTP secret \(add it to an authenticator app now; [^)]*\): (\S+)")


def printed_secret(output: str) -> str | None:
    found = PRINTED_SECRET.search(output)
    return found[1] if found else None


def add_with_device(env: dict[str, str], name: str, role: str, password: str) -> str:
    """Add ``name`` with ``opsdeck users add`` and a TOTP device; its secret."""
    added = run_opsdeck(
        "users", "add", name, "--role", role, "--totp", "--password-stdin",
        env=env, stdin=password + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    return device_secret(added.stdout)


def device_secret(output: str) -> str:
    """The secret ``opsdeck users add`` printed, which it must have."""
    secret = printed_secret(output)
    assert secret is not None, f"no TOTP secret printed: {output!r}"
    return secret


class Authenticator:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self._used: dict[str, int] = {}

    def add(self, username: str, output: str) -> str | None:
        """Keep the secret that ``opsdeck users add`` printed for ``username``, if any."""
        secret = printed_secret(output)
        if secret is not None:
            self.secrets[username] = secret
        return secret

    def code(self, username: str) -> str:
        """A code of ``username``'s device the API has not been given yet ("" without one)."""
        secret = self.secrets.get(username)
        if secret is None:
            return ""
        totp = pyotp.TOTP(secret)
        step = max(int(time.time()) // STEP_SECONDS, self._used.get(username, -1) + 1)
        while step > int(time.time()) // STEP_SECONDS + DRIFT_STEPS:
            time.sleep(1)  # every acceptable code is spent: wait for the next one
        self._used[username] = step
        return totp.at(step * STEP_SECONDS)
