"""Local stand-ins for everything Alertmanager notifies, recording what arrives.

One HTTP server takes the place of opsdeck's API hook (``/hooks/alertmanager``), PagerDuty's
Events API v2, Slack's incoming webhook and the dead man's switch's heartbeat URL, answering
each as the real service does, or with a 500 for a path told to refuse (a receiver that
stopped working); a real SMTP server (aiosmtpd) takes the mail, with authentication offered
so that Alertmanager's credentials can be checked.
"""

from __future__ import annotations

import email
import json
import threading
import time
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from opsdeck.embedded import free_port
from tests.local_http import InThread, send_answer

API_HOOK = "/hooks/alertmanager"
PAGERDUTY = "/v2/enqueue"
SLACK = "/slack/services/T0PSDECK/B0PSDECK/local"
HEARTBEAT = "/ping/0psdeck-dead-mans-switch"  # a healthchecks.io-style ping URL's path


@dataclass(frozen=True)
class HttpRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # the JSON document
    at: float  # time.time() when it arrived
    refused: bool = False  # answered 500: not delivered


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        refused = self.server.refuses(self.path)
        self.server.record(HttpRequest(self.path, headers, body, time.time(), refused))
        if refused:
            send_answer(self, 500, b"refused", {"Content-Type": "text/plain"})
            return
        status, reply = self._reply(body)
        kind = "text/plain" if reply in ("ok", "OK") else "application/json"
        send_answer(self, status, reply.encode(), {"Content-Type": kind})

    def _reply(self, body: Any) -> tuple[int, str]:
        if self.path == PAGERDUTY:  # what events.pagerduty.com answers
            dedup = body.get("dedup_key", "") if isinstance(body, dict) else ""
            reply = {"status": "success", "message": "Event processed", "dedup_key": dedup}
            return 202, json.dumps(reply)
        if self.path == SLACK:  # what hooks.slack.com answers
            return 200, "ok"
        if self.path == API_HOOK:
            return 200, "{}"
        if self.path == HEARTBEAT:  # what hc-ping.com answers
            return 200, "OK"
        return 404, json.dumps({"error": f"no route {self.path}"})

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads what arrived from the recording, not from stderr."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.lock = threading.Lock()
        self.requests: list[HttpRequest] = []
        self.refused: set[str] = set()

    def record(self, request: HttpRequest) -> None:
        with self.lock:
            self.requests.append(request)

    def refuses(self, path: str) -> bool:
        with self.lock:
            return path in self.refused


class HttpSink(InThread):
    """opsdeck's API hooks, PagerDuty and Slack on one local port, told apart by path."""

    def __init__(self) -> None:
        self._server = _Server(free_port(0))
        super().__init__(self._server)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def received(self, path: str | None = None) -> list[HttpRequest]:
        with self._server.lock:
            return [r for r in self._server.requests if path is None or r.path == path]

    def refuse(self, path: str, refused: bool = True) -> None:
        """Answer every request to ``path`` with a 500 (recorded all the same), or again as
        the real service does."""
        with self._server.lock:
            if refused:
                self._server.refused.add(path)
            else:
                self._server.refused.discard(path)


class _Smtp(SMTP):
    # The LOGIN challenges real servers (Postfix, Exchange) send; aiosmtpd's own differ, and
    # Alertmanager's LOGIN client accepts only these.
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _Smtp(self.handler, **self.SMTP_kwargs)


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    message: Message
    login: tuple[str, str] | None  # the credentials the session authenticated with
    at: float


class SmtpSink:
    """A real SMTP server (aiosmtpd) that offers AUTH and records every message."""

    def __init__(self) -> None:
        self.port = free_port(0)
        self._lock = threading.Lock()
        self._mails: list[Mail] = []
        self._controller = _Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,  # a local test server; credentials are checked, not hidden
        )

    @property
    def smarthost(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @staticmethod
    def _authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        # Accept any credentials and keep them: the test compares them with the secret files.
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        login = None
        auth: Any = session.auth_data  # typed None in aiosmtpd; holds what _authenticate kept
        if session.authenticated and isinstance(auth, LoginPassword):
            login = (auth.login.decode(), auth.password.decode())
        mail = Mail(
            str(envelope.mail_from),
            [str(r) for r in envelope.rcpt_tos],
            email.message_from_bytes(content),
            login,
            time.time(),
        )
        with self._lock:
            self._mails.append(mail)
        return "250 Message accepted for delivery"

    def received(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)
