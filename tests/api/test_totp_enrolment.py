"""Two-factor enrolment at the first sign-in: an account without a device gets no session
from its password, only the enrolment page (a QR code of a new secret, the secret as text,
a form for one code); a right code saves the device and signs in, and nothing else is
reachable before. The secret stays on the server, the code is limited like a sign-in."""

from __future__ import annotations

import html
import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pyotp
import pytest

from api.accounts import Admin, add_user, set_disabled
from api.auth.enrolment import COOKIE as ENROLMENT_COOKIE
from api.auth.sessions import COOKIE
from api.rbac import Role
from tests import qr_reader
from tests.api.conftest import PASSWORD, Harness, api_settings, csrf_token, running
from tests.conftest import suite_box

pytestmark = pytest.mark.anyio

SECRET_RE = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')
QR_RE = re.compile(r'id="totp-qr" src="([^"]+)"')
ENROL = "/login/enrol"


async def _password(
    api: Harness, client: httpx.AsyncClient, username: str, next_path: str = "/"
) -> httpx.Response:
    token = await csrf_token(client)
    form = {"username": username, "password": PASSWORD, "next": next_path, "csrf_token": token}
    return await client.post("/login", data=form)


async def _offered(client: httpx.AsyncClient) -> tuple[str, str]:
    """(the secret shown as text, the otpauth URI the QR code holds) of the page."""
    page = await client.get(ENROL)
    assert page.status_code == 200, page.text[:300]
    shown, qr = SECRET_RE.search(page.text), QR_RE.search(page.text)
    assert shown, page.text[:1000]
    assert qr, page.text[:1000]
    return shown[1].replace(" ", ""), qr_reader.from_data_uri(html.unescape(qr[1]))


async def _code(client: httpx.AsyncClient, code: str) -> httpx.Response:
    token = await csrf_token(client)  # bound to the browser, whichever page shows it
    return await client.post(ENROL, data={"code": code, "csrf_token": token})


def _wrong_codes(secret: str, count: int) -> list[str]:
    """Codes that no step near now gives: refused whenever they are typed."""
    totp, now = pyotp.TOTP(secret), time.time()
    valid = {totp.at(now + 30 * drift) for drift in (-2, -1, 0, 1, 2)}
    candidates = (f"{n:06d}" for n in range(0, 1_000_000, 7919))
    return [code for code in candidates if code not in valid][:count]


def _admin(api: Harness, conn: psycopg.Connection[tuple[object, ...]]) -> Admin:
    return Admin("test", conn, None, suite_box())


def _stored_secret(api: Harness, username: str) -> str | None:
    ((stored,),) = api.sql("SELECT totp_secret FROM ops.users WHERE username = %s", (username,))
    return None if stored is None else suite_box().open(stored)


def _enrolment_audit(api: Harness, username: str) -> list[tuple[str, str, str | None]]:
    rows = api.sql(
        "SELECT action, outcome, reason FROM ops.audit_log "
        "WHERE actor = %s AND action IN ('totp.enrol', 'sign_in') ORDER BY chain_seq",
        (username,),
    )
    return [(str(a), str(o), r) for a, o, r in rows]


async def test_the_first_sign_in_enrols_a_device_before_anything_else(api: Harness) -> None:
    username = api.user(Role.OPS, "enid")
    async with api.client() as client:
        offered = await _password(api, client, username, "/payments?from=now-1h")
        assert offered.status_code == 303
        assert offered.headers["location"] == ENROL
        cookie = "; ".join(offered.headers.get_list("set-cookie"))
        assert f"{ENROLMENT_COOKIE}=" in cookie
        assert "HttpOnly" in cookie
        assert f"Path={ENROL}" in cookie
        # Until a code comes back the password opened nothing.
        assert COOKIE not in client.cookies
        assert (await client.get("/api/v1/bookings")).status_code == 401
        home = await client.get("/")
        assert home.status_code == 303
        assert home.headers["location"].startswith("/login?next=")
        assert (await client.get("/payments")).headers["location"].startswith("/login?next=")

        secret, uri = await _offered(client)
        assert pyotp.parse_uri(uri).secret == secret
        assert parse_qs(urlsplit(uri).query)["issuer"] == ["opsdeck"]
        assert urlsplit(uri).path.endswith(f":{username}")
        # A reload shows the same secret: it waits on the server, not in the page.
        assert (await _offered(client))[0] == secret
        assert _stored_secret(api, username) is None

        wrong = await _code(client, _wrong_codes(secret, 1)[0])
        assert wrong.status_code == 401
        assert "does not match" in wrong.text
        assert _stored_secret(api, username) is None
        assert COOKIE not in client.cookies

        enrolled = await _code(client, pyotp.TOTP(secret).now())
        assert enrolled.status_code == 303, enrolled.text[:300]
        assert enrolled.headers["location"] == "/payments?from=now-1h"
        assert COOKIE in client.cookies
        assert ENROLMENT_COOKIE not in client.cookies
        assert (await client.get("/api/v1/bookings")).status_code == 200
        assert _stored_secret(api, username) == secret
        # The enrolment is over: the page offers nothing, a second code starts over.
        assert SECRET_RE.search((await client.get(ENROL)).text) is None
    assert _enrolment_audit(api, username) == [
        ("totp.enrol", "offered", None),
        ("totp.enrol", "failed", "bad two-factor code"),
        ("totp.enrol", "ok", None),
        ("sign_in", "ok", None),
    ]
    # From now on the password alone fails, and password + code signs in directly.
    async with api.client() as client:
        assert (await _password(api, client, username)).status_code == 401
        next_step = pyotp.TOTP(secret).at(time.time() + 30)  # the enrolment used this step's
        signed_in = await api.sign_in(client, username, code=next_step)
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/"


async def test_an_account_with_a_device_skips_enrolment(api: Harness) -> None:
    username = api.user(Role.VIEWER, "devi", two_factor=True)
    async with api.client() as client:
        response = await api.sign_in(client, username)
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        assert ENROLMENT_COOKIE not in str(response.headers.get_list("set-cookie"))
        assert (await client.get("/api/v1/bookings")).status_code == 200
    assert _enrolment_audit(api, username) == [("sign_in", "ok", None)]


async def test_a_super_admin_may_wait_for_a_device_and_enrols_at_sign_in(api: Harness) -> None:
    with psycopg.connect(api.db_url) as conn:
        assert add_user(_admin(api, conn), "sue", Role.SUPER_ADMIN, PASSWORD, False) is None
    assert _stored_secret(api, "sue") is None
    async with api.client() as client:
        offered = await _password(api, client, "sue")
        assert offered.headers["location"] == ENROL
        assert (await client.get("/api/v1/audit")).status_code == 401
        secret, _ = await _offered(client)
        assert (await _code(client, pyotp.TOTP(secret).now())).status_code == 303
        assert (await client.get("/api/v1/audit")).status_code == 200


async def test_the_browser_cannot_choose_the_secret(api: Harness) -> None:
    username = api.user(Role.FINANCE, "mallory")
    attacker_secret = pyotp.random_base32()
    async with api.client() as client:
        await _password(api, client, username)
        shown, _ = await _offered(client)
        # A secret of the browser's own, sent along with a code made from it, is no device.
        token = await csrf_token(client, ENROL)
        form = {
            "code": pyotp.TOTP(attacker_secret).now(),
            "secret": attacker_secret,
            "csrf_token": token,
        }
        assert (await client.post(ENROL, data=form)).status_code == 401
        genuine = client.cookies[ENROLMENT_COOKIE]
    # Nor does an enrolment cookie the API did not sign name the waiting secret.
    async with api.client() as forger:
        forger.cookies.set(
            ENROLMENT_COOKIE, genuine[:-4] + ("AAAA" if genuine[-4:] != "AAAA" else "BBBB")
        )
        assert SECRET_RE.search((await forger.get(ENROL)).text) is None
        refused = await _code(forger, pyotp.TOTP(shown).now())
        assert refused.status_code == 303
        assert refused.headers["location"] == "/login"
    assert _stored_secret(api, username) is None


async def test_an_account_changed_meanwhile_is_not_enrolled(api: Harness) -> None:
    username = api.user(Role.OPS, "dis")
    async with api.client() as client:
        await _password(api, client, username)
        secret, _ = await _offered(client)
        with psycopg.connect(api.db_url) as conn:
            set_disabled(_admin(api, conn), username, True)
        refused = await _code(client, pyotp.TOTP(secret).now())
        assert refused.status_code == 401
        assert "changed" in refused.text
        assert COOKIE not in client.cookies
    assert _stored_secret(api, username) is None


async def test_enrolment_codes_are_limited_like_sign_ins(api_db: str, api_redis: str) -> None:
    settings = api_settings(api_db, api_redis, login_user_failures_before_backoff=3)
    async with running(settings) as harness:
        username = harness.user(Role.VIEWER, "guesser")
        async with harness.client() as client:
            await _password(harness, client, username)
            secret, _ = await _offered(client)
            wrong = _wrong_codes(secret, 4)
            statuses = [(await _code(client, code)).status_code for code in wrong[:3]]
            limited = await _code(client, wrong[3])
        assert statuses == [401, 401, 401]
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert _stored_secret(harness, username) is None
