"""Partner servers for the gateway's tests: a threaded HTTP server whose answer depends on
the path, recording every request it gets (and whether its signature verifies)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from opsdeck.embedded import free_port
from tests.local_http import InThread, send_answer


@dataclass(frozen=True)
class Seen:
    path: str
    webhook_id: str
    at: float
    verified: bool
    headers: dict[str, str]
    body: bytes


class Partner(InThread):
    """Paths: ``/ok``; ``/fail/<n>`` (500 for the first n tries of each webhook-id);
    ``/flaky/<k>`` (503 for one request in k on the path, never two in a row); ``/status/<code>``; ``/slow/<ms>``; ``/redirect`` (302 to ``redirect_to``);
    ``/busy/<seconds>`` (429 with Retry-After, once per webhook-id)."""

    def __init__(self, secrets: list[str] | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(0) if host == "127.0.0.1" else _free_on(host)
        self.secrets = list(secrets or [])
        self.seen: list[Seen] = []
        self.redirect_to = ""
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._tries: dict[tuple[str, str], int] = {}
        self._calls: dict[str, int] = {}  # requests so far, by path
        partner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                partner.handle(self)

            def do_GET(self) -> None:
                partner.handle(self)

        server = _QuietServer((host, self.port), Handler)
        server.daemon_threads = True
        super().__init__(server)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers, json_parse=False)
            except (WebhookVerificationError, ValueError):
                continue
            return True
        return False

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in request.headers.items()}
        webhook_id = headers.get("webhook-id", "")
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.seen.append(
                Seen(
                    request.path, webhook_id, time.time(), self.verify(body, headers), headers, body
                )
            )
            key = (request.path, webhook_id)
            self._tries[key] = tries = self._tries.get(key, 0) + 1
            self._calls[request.path] = calls = self._calls.get(request.path, 0) + 1
        try:
            status, extra, text = self._answer(request.path, tries, calls)
        finally:
            with self._lock:
                self.in_flight -= 1
        send_answer(request, status, text.encode(), extra)

    def _answer(self, path: str, tries: int, calls: int) -> tuple[int, dict[str, str], str]:
        parts = path.strip("/").split("/")
        kind = parts[0]
        arg = parts[1] if len(parts) > 1 else ""
        if kind == "fail" and tries <= int(arg):
            return 500, {}, "not yet"
        if kind == "flaky" and calls % int(arg) == 0:
            return 503, {}, "try again"
        if kind == "status":
            return int(arg), {}, f"status {arg}"
        if kind == "slow":
            time.sleep(int(arg) / 1000)
        if kind == "redirect":
            return 302, {"location": self.redirect_to}, ""
        if kind == "busy" and tries == 1:
            return 429, {"retry-after": arg}, "slow down"
        return (
            200,
            {"content-type": "text/plain"},
            "thanks " + "x" * 30_000 if kind == "big" else "ok",
        )

    def ids(self, path: str | None = None) -> list[str]:
        with self._lock:
            return [s.webhook_id for s in self.seen if path is None or s.path == path]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a worker's timeout) is expected here."""


def _free_on(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def partner(secrets: list[str] | None = None, host: str = "127.0.0.1") -> Iterator[Partner]:
    server = Partner(secrets, host).start()
    try:
        yield server
    finally:
        server.stop()
