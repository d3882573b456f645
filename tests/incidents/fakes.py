"""A local HTTPS server standing in for PagerDuty and Slack: it records every request
(path, headers, JSON body) and answers from a script per path (default: the real API's
answer), so tests assert exact bodies and drive 429/5xx/4xx and timeouts.

Slack's ``chat.postMessage`` and ``chat.update`` are checked as Slack checks them: a bot
token (``not_authed``/``invalid_auth``), a JSON body, the required fields and no others
(``invalid_arguments``), answered as Slack answers, HTTP 200 with ``ok: false``."""

from __future__ import annotations

import json
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import trustme

from tests.local_http import InThread, send_json

PAGERDUTY_OK = {"status": "success", "message": "Event processed", "dedup_key": ""}


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    body: Any  # the JSON document; None when the body is not JSON
    raw: bytes = b""


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Fake:
    base: str
    ca_file: str = ""  # the local CA's certificate (PEM), for clients that take a path
    seen: list[Seen] = field(default_factory=list)
    script: dict[str, list[Reply]] = field(default_factory=dict)

    def on(self, path: str, *replies: Reply) -> None:
        self.script.setdefault(path, []).extend(replies)

    def bodies(self, path: str) -> list[Any]:
        return [s.body for s in self.seen if s.path == path]


SLACK_FIELDS = {
    "chat.postMessage": ({"channel", "text"}, {"channel", "text", "blocks"}),
    "chat.update": ({"channel", "ts", "text"}, {"channel", "ts", "text", "blocks"}),
}


def _slack(method: str, headers: dict[str, str], body: Any) -> dict[str, Any]:
    """Slack's answer to ``method``: the request checked as Slack checks it."""
    authorization = headers.get("authorization", "")
    if not authorization:
        return {"ok": False, "error": "not_authed"}
    if not authorization.startswith("Bearer xox"):
        return {"ok": False, "error": "invalid_auth"}
    required, allowed = SLACK_FIELDS[method]
    if not isinstance(body, dict) or not required <= body.keys() <= allowed:
        return {"ok": False, "error": "invalid_arguments"}
    return {"ok": True, "channel": "C0123", "ts": body.get("ts", "1700000000.000100")}


def _default(path: str, headers: dict[str, str], body: Any) -> Any:
    if path.endswith("/v2/enqueue"):
        return {**PAGERDUTY_OK, "dedup_key": (body or {}).get("dedup_key", "")}
    if path == "/api/annotations":
        return {"message": "Annotation added", "id": 1}
    method = path.rpartition("/")[2]
    if method in SLACK_FIELDS:
        return _slack(method, headers, body)
    return {}


def _handler(fake: Fake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            is_json = self.headers.get("content-type", "").startswith("application/json")
            body = json.loads(raw) if raw and is_json else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            fake.seen.append(Seen(self.path, headers, body, raw))
            queue = fake.script.get(self.path, [])
            reply = queue.pop(0) if queue else Reply()
            time.sleep(reply.delay)
            answer = reply.body if reply.body is not None else _default(self.path, headers, body)
            send_json(self, reply.status, answer, reply.headers)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@dataclass(frozen=True)
class Served:
    base: str
    ca_file: str
    context: ssl.SSLContext  # trusts the local CA (only)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLEOFError):
            return  # a client that gave up (the timeout tests) hung up before the answer
        super().handle_error(request, client_address)


@contextmanager
def https_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[Served]:
    """``handler`` served over HTTPS on localhost, with a certificate from a fresh CA."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    server = _Server(("127.0.0.1", 0), handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    pem = tempfile.NamedTemporaryFile(suffix=".pem", delete=False)  # noqa: SIM115 - removed below
    pem.close()
    ca.cert_pem.write_to_path(pem.name)
    running = InThread(server)
    running.start()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    try:
        yield Served(f"https://localhost:{server.server_address[1]}", pem.name, client_context)
    finally:
        running.stop()
        os.unlink(pem.name)


@contextmanager
def trusted_as_system_ca(ca_file: str) -> Iterator[None]:
    """``ca_file`` as the system's trust (``SSL_CERT_FILE``) while inside: for clients that
    cannot take the injected httpx client and build their own verifying TLS context
    (the Slack transport's aiohttp), as a private CA is trusted in production."""
    previous = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = ca_file
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = previous


@contextmanager
def https_fake() -> Iterator[tuple[Fake, httpx.AsyncClient]]:
    """The fake, and an httpx client that trusts its certificate authority (only); while
    it runs, the system's trust is that authority too (:func:`trusted_as_system_ca`)."""
    fake = Fake("")
    with https_server(_handler(fake)) as served, trusted_as_system_ca(served.ca_file):
        fake.base, fake.ca_file = served.base, served.ca_file
        yield fake, httpx.AsyncClient(verify=served.context, timeout=1.0)
