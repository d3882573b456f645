"""``opsdeck users add``: a device issued now is printed as its secret, its otpauth URI and a
QR code a phone reads off the terminal; without one, the account enrols at sign-in."""

from __future__ import annotations

import psycopg
import pyotp

from tests import qr_reader
from tests.authenticator import printed_secret
from tests.conftest import opsdeck_env, run_opsdeck, suite_box

PASSWORD = "users qr password 0123456789"


def _add(db_url: str, name: str, role: str, *flags: str) -> str:
    env = opsdeck_env(DATABASE_URL=db_url)
    argv = ("users", "add", name, "--role", role, *flags, "--password-stdin")
    added = run_opsdeck(*argv, env=env, timeout=120, stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    return added.stdout


def _stored(db_url: str, name: str) -> str | None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT totp_secret FROM ops.users WHERE username = %s", (name,))
        ((stored,),) = row.fetchall()
    return None if stored is None else suite_box().open(stored)


def test_a_device_issued_now_is_printed_as_a_qr_code(db_url: str) -> None:
    for name, role, flags in (("quinn", "ops", ("--totp",)), ("boss", "super_admin", ())):
        out = _add(db_url, name, role, *flags)
        secret = printed_secret(out)
        assert secret is not None, out
        uri = qr_reader.from_terminal(out)
        assert f"otpauth URI: {uri}" in out
        assert pyotp.parse_uri(uri).secret == secret
        assert pyotp.parse_uri(uri).name == name
        assert _stored(db_url, name) == secret


def test_without_a_device_the_account_enrols_at_sign_in(db_url: str) -> None:
    out = _add(db_url, "newt", "viewer")
    assert printed_secret(out) is None
    assert "enrolled at the first sign-in" in out
    assert "█" not in out  # no QR code of anything
    assert _stored(db_url, "newt") is None
