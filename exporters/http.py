"""The exporter's HTTP server: /metrics from :class:`MetricsPage`, kept-alive connections.

A scrape only copies bytes (the page is rendered when the values change), so the server is
the standard library's threading one, speaking HTTP/1.1 so that a scraper can keep its
connection.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast
from urllib.parse import urlsplit

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from exporters.metrics_page import MetricsPage

log = logging.getLogger(__name__)
INDEX = b'<html><body><h1>opsdeck exporter</h1><a href="/metrics">/metrics</a></body></html>\n'

SHUTDOWN_POLL_SECONDS = 0.1  # how soon serve_forever notices shutdown()


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, page: MetricsPage) -> None:
        self.page = page
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once, not after a delayed ACK
    server_version = "opsdeck-exporter"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            gzip = "gzip" in self.headers.get("Accept-Encoding", "")
            body = cast(MetricsServer, self.server).page.body(gzip)
            self._send(200, CONTENT_TYPE_PLAIN_0_0_4, body, "gzip" if gzip else None)
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", INDEX)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics\n")

    def _send(self, status: int, kind: str, body: bytes, encoding: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def serve(host: str, port: int, page: MetricsPage) -> tuple[MetricsServer, threading.Thread]:
    server = MetricsServer(host, port, page)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
        name="metrics-http",
        daemon=True,
    )
    thread.start()
    return server, thread
