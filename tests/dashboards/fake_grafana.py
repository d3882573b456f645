"""A local stand-in for Grafana's HTTP API that records every request it gets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.local_http import InThread, send_json


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class FakeGrafana:
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path.startswith("/api/folders/"):
            uid = path.rsplit("/", 1)[1]
            if uid in self.folders:
                return 200, self.folders[uid]
            return 404, {"message": "folder not found"}
        if method == "POST" and path == "/api/folders":
            self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "id": 7}
            return 200, self.folders[body["uid"]]
        if method == "POST" and path == "/api/dashboards/db":
            if body.get("folderUid") not in self.folders:
                return 400, {"message": "folder not found"}
            uid = body["dashboard"]["uid"]
            self.dashboards[uid] = body
            return 200, {"status": "success", "uid": uid, "version": 1}
        return 404, {"message": "not found"}


def serve(fake: FakeGrafana) -> tuple[InThread, str]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            fake.requests.append(
                Recorded(self.command, self.path, self.headers.get("Authorization"), body)
            )
            status, payload = fake.handle(self.command, self.path, body)
            send_json(self, status, payload)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    running = InThread(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    running.start()
    return running, f"http://127.0.0.1:{running.server.server_address[1]}"
