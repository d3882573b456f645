"""The two-factor enrolment page, where an account without a device gets one.

After a right password (:mod:`api.signin`), the page shows a QR code of a new secret, drawn
on the server as SVG and embedded as an image (no script, nothing inline for the CSP to
refuse), and the secret as text for typing in; the form asks for one current code from it.
Only a right code saves the device and makes the session. The secret never leaves the
server but on this page (:mod:`api.auth.enrolment`); the code is limited and backed off
exactly like a sign-in (:mod:`api.auth.signin_limits`); every step is audited.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.auth import enrolment, totp
from api.auth.enrolment import Enrolment
from api.auth.signin_limits import SigninLimits
from api.pages import render
from api.queries import access as sql
from api.routing import RouteSpec, audit_entry, runtime_of
from api.runtime import Runtime
from api.signin import FORM, form_field, signed_in
from core.audit import record

log = logging.getLogger(__name__)
TEMPLATE = "enrol_totp.html"
QR_SCALE = 5  # pixels per module: a version 5-7 code is 225-265 px wide with its border
WRONG_CODE = (
    "That code does not match the secret shown. Check the app's clock, wait for the next "
    "code and try again."
)
CHANGED = "The account changed before its device was saved; sign in again."


def _context(pending: Enrolment | None, ttl_seconds: int, error: str | None) -> dict[str, Any]:
    if pending is None:
        return {"enrolment": None, "error": error}
    qr = totp.provisioning_qr(pending.secret, pending.username)
    width, height = qr.symbol_size(scale=QR_SCALE)
    secret = pending.secret
    return {
        "enrolment": {
            "username": pending.username,
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "qr": qr.svg_data_uri(scale=QR_SCALE, dark="#000", light="#fff"),
            "qr_width": width,
            "qr_height": height,
        },
        "minutes": max(1, ttl_seconds // 60),
        "error": error,
    }


async def enrol_page(request: Request) -> Response:
    store = enrolment.store_of(runtime_of(request))
    pending = await store.load(request.cookies.get(enrolment.COOKIE))
    return render(request, TEMPLATE, _context(pending, store.ttl, None))


async def _audit(
    runtime: Runtime, request: Request, pending: Enrolment, outcome: str, **fields: Any
) -> None:
    entry = audit_entry(
        request,
        "totp.enrol",
        actor=pending.username,
        target_type="user",
        target_id=pending.username,
        outcome=outcome,
        **fields,
    )
    await record(runtime.ops, entry)


async def _save_device(runtime: Runtime, pending: Enrolment) -> dict[str, Any] | None:
    """The user's row with the device saved, or None when the account is no longer the one
    the secret was offered to (disabled, reset, enrolled meanwhile)."""
    sealed = runtime.secret_box.seal(pending.secret)
    async with runtime.ops.connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        params = {"id": pending.user_id, "version": pending.version, "totp_secret": sealed}
        await cursor.execute(sql.ENROL_TOTP, params)
        saved: dict[str, Any] | None = await cursor.fetchone()
    return saved


async def enrol(request: Request) -> Response:
    runtime = runtime_of(request)
    store = enrolment.store_of(runtime)
    pending = await store.load(request.cookies.get(enrolment.COOKIE))
    if pending is None:  # expired, never started, or finished: the sign-in starts over
        return RedirectResponse("/login", status_code=303)
    code = form_field(await request.form(), "code", 8)
    address = request.client.host if request.client else "unknown"
    limits = SigninLimits(runtime.redis, runtime.api)
    wait = await limits.wait(pending.username, address)
    if wait is not None:
        log.warning("enrolment rate limit hit for %r from %s", pending.username, address)
        error = f"Too many attempts; try again in {wait} s."
        response = render(request, TEMPLATE, _context(pending, store.ttl, error), status=429)
        response.headers["Retry-After"] = str(wait)
        return response
    if not await totp.verify_code(runtime.redis, pending.user_id, pending.secret, code):
        await limits.failed(pending.username, address)
        await _audit(runtime, request, pending, "failed", reason="bad two-factor code")
        return render(request, TEMPLATE, _context(pending, store.ttl, WRONG_CODE), status=401)
    user = await _save_device(runtime, pending)
    await store.discard(pending)
    if user is None:
        await _audit(runtime, request, pending, "failed", reason="account changed")
        return render(request, "login.html", _signin_again(pending), status=401)
    await limits.succeeded(pending.username, address)
    await _audit(runtime, request, pending, "ok", actor_role=user["role"])
    response = await signed_in(request, runtime, user, pending.next_path)
    response.delete_cookie(
        enrolment.COOKIE,
        path=enrolment.PATH,
        httponly=True,
        samesite="strict",
        secure=runtime.api.cookie_secure,
    )
    log.info("%s enrolled a two-factor device", pending.username)
    return response


def _signin_again(pending: Enrolment) -> dict[str, Any]:
    return {"next": pending.next_path, "username": pending.username, "error": CHANGED}


ENROL_FORM = {
    FORM: {
        "type": "object",
        "required": ["code", "csrf_token"],
        "properties": {
            "code": {"type": "string", "maxLength": 8},
            "csrf_token": {"type": "string"},
        },
    }
}

ROUTES = (
    RouteSpec(
        enrolment.PATH,
        "totp_enrol_page",
        enrol_page,
        None,
        "html",
        "Two-factor enrolment: the QR code of a new secret, after a right password",
        tags=("auth",),
    ),
    RouteSpec(
        enrolment.PATH,
        "totp_enrol",
        enrol,
        None,
        "form",
        "Save the enrolled device with a current code from it, and sign in",
        methods=("POST",),
        body=ENROL_FORM,
        tags=("auth",),
    ),
)
