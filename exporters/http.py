"""The exporter's HTTP server: /metrics from :class:`MetricsPage`, /healthz, kept-alive
connections.

``GET /healthz`` answers 200 ``ok`` while /metrics serves what this replica should: on a
standby its standby page, on the leader the committed values once they are loaded from ops
(which may be stale: ``opsdeck_collector_up`` and ``opsdeck_collector_lag_seconds`` say how
fresh). A page that would carry KPIs before the values are loaded answers 503 instead, so an
orchestrator does not route scrapes to a replica that would serve zeros. Any other path but
``/`` is 404.

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
INDEX = (
    b'<html><body><h1>opsdeck exporter</h1><a href="/metrics">/metrics</a> '
    b'<a href="/healthz">/healthz</a></body></html>\n'
)
TEXT = "text/plain; charset=utf-8"

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
        page = cast(MetricsServer, self.server).page
        if path == "/metrics":
            gzip = "gzip" in self.headers.get("Accept-Encoding", "")
            self._send(200, CONTENT_TYPE_PLAIN_0_0_4, page.body(gzip), "gzip" if gzip else None)
        elif path == "/healthz":
            if page.ready:
                self._send(200, TEXT, b"ok\n")
            else:
                self._send(503, TEXT, b"starting: the values are not loaded from ops yet\n")
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", INDEX)
        else:
            self._send(404, TEXT, b"not found: try /metrics or /healthz\n")

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
