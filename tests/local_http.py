"""The suite's local HTTP stand-ins (partners, PagerDuty, Slack, Grafana, the alert sinks),
written one way: each answer is the status, the headers, a ``content-length`` that matches
the body, then the body, so every client reads it to its end, keep-alive or not; and each
server answers from a daemon thread (:class:`InThread`) until it is stopped, after which
its port is closed and its thread has ended."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Self


def send_answer(
    handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: Mapping[str, str]
) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    document: Any,
    headers: Mapping[str, str] | None = None,
) -> None:
    """``document`` as JSON; ``headers`` may add to or replace the content type."""
    body = json.dumps(document).encode()
    send_answer(handler, status, body, {"content-type": "application/json", **(headers or {})})


class InThread:
    """``server`` answering from a daemon thread between :meth:`start` and :meth:`stop`;
    a stand-in that is such a server subclasses it."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)
