"""Sign-in and sign-out pages: password plus TOTP code, limited per client address and backed
off per user at an address and per address, in Redis before any database work
(:mod:`api.auth.signin_limits`); every attempt is audited. An account without a TOTP device
gets no session from its password: it is sent to enrol one first (:mod:`api.enrolment`)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.auth import enrolment, passwords, totp
from api.auth.sessions import COOKIE
from api.auth.signin_limits import SigninLimits
from api.pages import render
from api.problems import invalid
from api.queries import access as sql
from api.routing import Param, RouteSpec, audit_entry, principal_of, runtime_of, safe_next
from api.runtime import Runtime
from core.audit import record

log = logging.getLogger(__name__)
FAILED = "Unknown user, wrong password or wrong two-factor code."
FORM = "application/x-www-form-urlencoded"


def form_field(form: Any, name: str, limit: int, *, printable: bool = True) -> str:
    value = form.get(name, "")
    if not isinstance(value, str) or len(value) > limit:
        raise invalid(name, f"at most {limit} characters")
    if "\x00" in value or (printable and not value.isprintable()):
        raise invalid(name, "printable characters only")
    return value


async def login_page(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    return render(request, "login.html", {"next": next_path, "error": None, "username": ""})


async def _user(runtime: Runtime, username: str) -> dict[str, Any] | None:
    async with runtime.ops.connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(sql.USER_BY_NAME, {"username": username})
        found: dict[str, Any] | None = await cursor.fetchone()
    return found


async def _check(
    runtime: Runtime, user: dict[str, Any] | None, password: str, code: str
) -> str | None:
    """Why the sign-in fails (for the audit trail), or None when it succeeds."""
    hashed = user["password_hash"] if user else None
    if not await anyio.to_thread.run_sync(passwords.verify_password, hashed, password):
        return "bad credentials"
    assert user is not None
    if user["disabled_at"] is not None:
        return "account disabled"
    secret = user["totp_secret"]
    if secret is None:
        return None  # no device yet: the password alone leads only to enrolling one
    opened = runtime.secret_box.open(secret)  # stored sealed (core.sealed_secrets)
    if not await totp.verify_code(runtime.redis, user["id"], opened, code):
        return "bad two-factor code"
    return None


async def login(request: Request) -> Response:
    runtime = runtime_of(request)
    form = await request.form()
    username = form_field(form, "username", 128).strip()
    password = form_field(form, "password", 256, printable=False)
    code = form_field(form, "code", 8)
    next_path = safe_next(form_field(form, "next", 2000))
    address = request.client.host if request.client else "unknown"
    context = {"next": next_path, "username": username}
    limits = SigninLimits(runtime.redis, runtime.api)
    wait = await limits.wait(username, address)
    if wait is not None:
        log.warning("sign-in rate limit hit for %r from %s", username, address)
        response = render(
            request,
            "login.html",
            {**context, "error": f"Too many attempts; try again in {wait} s."},
            status=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    user = await _user(runtime, username)
    failure = await _check(runtime, user, password, code)
    if failure is not None or user is None:
        await limits.failed(username, address)
        failed = audit_entry(
            request, "sign_in", actor=username or "(blank)", outcome="failed", reason=failure
        )
        await record(runtime.ops, failed)
        return render(request, "login.html", {**context, "error": FAILED}, status=401)
    if user["totp_secret"] is None:
        # The user's failures are forgiven once a device is enrolled, not before.
        return await _offer_enrolment(request, runtime, user, next_path)
    await limits.succeeded(username, address)
    rehash = None
    if passwords.needs_rehash(user["password_hash"]):
        rehash = await anyio.to_thread.run_sync(passwords.hash_password, password)
    return await signed_in(request, runtime, user, next_path, rehash=rehash)


async def _offer_enrolment(
    request: Request, runtime: Runtime, user: dict[str, Any], next_path: str
) -> Response:
    """The password was right and the account has no device: a new secret waits for a code
    on the enrolment page; no session yet."""
    store = enrolment.store_of(runtime)
    offered, cookie = await store.start(
        user["id"], user["session_version"], user["username"], next_path
    )
    entry = audit_entry(
        request,
        "totp.enrol",
        actor=user["username"],
        actor_role=user["role"],
        target_type="user",
        target_id=user["username"],
        outcome="offered",
    )
    await record(runtime.ops, entry)
    response = RedirectResponse(enrolment.PATH, status_code=303)
    response.set_cookie(
        enrolment.COOKIE,
        cookie,
        max_age=store.ttl,
        httponly=True,
        samesite="strict",
        secure=runtime.api.cookie_secure,
        path=enrolment.PATH,
    )
    log.info("%s signed in with a password and enrols a two-factor device", offered.username)
    return response


async def signed_in(
    request: Request,
    runtime: Runtime,
    user: dict[str, Any],
    next_path: str,
    *,
    rehash: str | None = None,
) -> Response:
    """The session of a user who gave their password and a code from their device: the
    cookie, the sign-in time (and a rehashed password) on their row, the audit entry."""
    session, cookie = await runtime.sessions.create(user["id"], user["session_version"])
    async with runtime.ops.connection() as conn:
        await conn.execute(sql.SIGNED_IN, {"id": user["id"], "password_hash": rehash})
    entry = audit_entry(
        request,
        "sign_in",
        actor=user["username"],
        actor_role=user["role"],
        details={"via": "password+totp"},
    )
    await record(runtime.ops, entry)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=runtime.sessions.ttl,
        httponly=True,
        samesite="strict",
        secure=runtime.api.cookie_secure,
        path="/",
    )
    log.info("signed in %s (session %s...)", user["username"], session.id[:6])
    return response


async def logout(request: Request) -> Response:
    runtime = runtime_of(request)
    principal = principal_of(request)
    if principal.session is not None:
        await runtime.sessions.revoke(principal.session)
    await record(runtime.ops, audit_entry(request, "sign_out"))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=runtime.api.cookie_secure
    )
    return response


LOGIN_FORM = {
    FORM: {
        "type": "object",
        "required": ["username", "password", "csrf_token"],
        "properties": {
            "username": {"type": "string", "maxLength": 128},
            "password": {"type": "string", "maxLength": 256},
            "code": {"type": "string", "maxLength": 8},
            "next": {"type": "string", "maxLength": 2000},
            "csrf_token": {"type": "string"},
        },
    }
}
CSRF_FORM = {
    FORM: {
        "type": "object",
        "required": ["csrf_token"],
        "properties": {"csrf_token": {"type": "string"}},
    }
}

ROUTES = (
    RouteSpec(
        "/login",
        "login_page",
        login_page,
        None,
        "html",
        "Sign-in page",
        params=(Param("next", {"type": "string", "maxLength": 2000}),),
        tags=("auth",),
    ),
    RouteSpec(
        "/login",
        "login",
        login,
        None,
        "form",
        "Sign in (password + TOTP code)",
        methods=("POST",),
        body=LOGIN_FORM,
        tags=("auth",),
    ),
    RouteSpec(
        "/logout",
        "logout",
        logout,
        "signed_in",
        "form",
        "Sign out (ends the session)",
        methods=("POST",),
        body=CSRF_FORM,
        tags=("auth",),
    ),
)
