"""CSRF protection for every state-changing request made with cookies.

A browser's token is an HMAC of its session cookie (or, before sign-in, of a random
``opsdeck_csrf`` nonce cookie), so a token lifted from one browser is useless in another and
an attacker cannot mint one. POST/PUT/PATCH/DELETE must carry it in the ``csrf_token`` form
field or the ``X-CSRF-Token`` header. Requests authenticated by an ``Authorization`` header
(API keys) send no ambient credentials and need no token, and neither do paths under
``exempt_prefixes`` (the signed inbound PSP webhooks). Templates read the token from
``request.state.csrf_token``.
"""

from __future__ import annotations

import hmac
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth.sessions import COOKIE as SESSION_COOKIE
from api.problems import Problem, problem_response
from api.signing import Keys

NONCE_COOKIE = "opsdeck_csrf"
FIELD = "csrf_token"
HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM = b"application/x-www-form-urlencoded"


def _cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is just no cookies
                return {}
    return {key: morsel.value for key, morsel in jar.items()}


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return bytes(value)
    return None


class CsrfMiddleware:
    def __init__(
        self, app: ASGIApp, keys: Keys, secure_cookie: bool, exempt_prefixes: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.keys = keys
        self.secure = "; Secure" if secure_cookie else ""
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = _cookies(scope)
        nonce = cookies.get(NONCE_COOKIE)
        new_nonce = None
        if not nonce:
            nonce = new_nonce = secrets.token_urlsafe(24)
        binding = cookies.get(SESSION_COOKIE) or nonce
        expected = self.keys.csrf_token(binding)
        scope.setdefault("state", {})["csrf_token"] = expected

        exempt = scope["path"].startswith(self.exempt_prefixes) if self.exempt_prefixes else False
        if (
            scope["method"] not in SAFE_METHODS
            and _header(scope, b"authorization") is None
            and not exempt
        ):
            receive, offered = await self._offered_token(scope, receive)
            if offered is None or not hmac.compare_digest(offered, expected):
                problem = Problem(403, "missing or stale CSRF token: reload the page and retry")
                request_id = scope["state"].get("request_id")
                await problem_response(problem, request_id)(scope, receive, send)
                return

        async def send_with_nonce(message: Message) -> None:
            if message["type"] == "http.response.start" and new_nonce is not None:
                cookie = (
                    f"{NONCE_COOKIE}={new_nonce}; Path=/; HttpOnly; SameSite=Strict{self.secure}"
                )
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_nonce)

    async def _offered_token(self, scope: Scope, receive: Receive) -> tuple[Receive, str | None]:
        """The token the request offers, and a ``receive`` that replays the body read."""
        header = _header(scope, HEADER)
        content_type = (_header(scope, b"content-type") or b"").split(b";")[0].strip()
        if header is not None or content_type != FORM:
            return receive, header.decode("latin-1") if header is not None else None
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        values = parse_qs(body.decode("utf-8", "replace")).get(FIELD, [])
        return replay, values[0] if values else None
