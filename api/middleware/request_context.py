"""Request id, structured access log, HTTP metrics, and the last-resort error response.

Each request gets an id (the caller's ``X-Request-ID`` when it is a sane token), echoed in
the response and carried by every log line written while it is served. An exception that
escapes the app becomes a problem+json 500 naming that id, never a bare traceback.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http_metrics import HttpMetrics
from api.problems import Problem, problem_response

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
access_log = logging.getLogger("opsdeck.api.access")
log = logging.getLogger(__name__)


class RequestIdFilter(logging.Filter):
    """Stamps every record with the id of the request being served, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            if REQUEST_ID_RE.match(candidate):
                return candidate
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error serving %s %s", scope["method"], scope["path"])
            if not response_started:
                problem = Problem(500, "the server failed; quote the request id when reporting it")
                await problem_response(problem, request_id)(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            self._finish(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _finish(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
        self.metrics.observe(template, method, status, seconds)
        state = scope.get("state", {})
        access_log.info(
            "%s %s %d",
            method,
            scope["path"],
            status,
            extra={
                "event": "request",
                "request_id": state.get("request_id"),
                "method": method,
                "path": scope["path"],
                "route": template,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "principal": state.get("principal_name"),
                "client": (scope.get("client") or (None,))[0],
            },
        )
