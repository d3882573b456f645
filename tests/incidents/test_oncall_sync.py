"""``opsdeck oncall sync`` against a stateful local HTTPS fake of PagerDuty's REST API:
schedules and the escalation policy are created, then updated in place (a second sync
creates nothing), with PagerDuty's headers and bodies; unknown users stop the sync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from alert_rules.oncall import OnCall, load_oncall
from api.incidents.oncall_sync import ACCEPT, PagerDutyRest, SyncError, sync
from tests.incidents.fakes import Served, https_server

TOKEN = "u+pd-rest-token"


class PagerDutyState:
    def __init__(self, emails: list[str]) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            "users": {f"PU{i}": {"id": f"PU{i}", "email": e} for i, e in enumerate(emails)},
            "schedules": {},
            "escalation_policies": {},
        }
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []


def _handler(state: PagerDutyState) -> type[BaseHTTPRequestHandler]:
    singular = {"schedules": "schedule", "escalation_policies": "escalation_policy"}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _read(self) -> Any:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append((self.command, self.path, headers, body))
            if headers.get("authorization") != f"Token token={TOKEN}":
                self._answer(401, {"error": {"message": "Unauthorized"}})
                return None
            return body if body is not None else {}

        def do_GET(self) -> None:
            if self._read() is None:
                return
            url = urlsplit(self.path)
            collection = url.path.strip("/")
            query = parse_qs(url.query).get("query", [""])[0]
            items = [
                o
                for o in state.objects[collection].values()
                if query in (o.get("name", ""), o.get("email", ""))
            ]
            self._answer(200, {collection: items, "more": False})

        def do_POST(self) -> None:
            body = self._read()
            if body is None:
                return
            collection = self.path.strip("/")
            item = dict(body[singular[collection]])
            item["id"] = f"P{collection[0].upper()}{len(state.objects[collection]) + 1}"
            state.objects[collection][item["id"]] = item
            self._answer(201, {singular[collection]: item})

        def do_PUT(self) -> None:
            body = self._read()
            if body is None:
                return
            collection, ident = self.path.strip("/").split("/")
            item = {**body[singular[collection]], "id": ident}
            state.objects[collection][ident] = item
            self._answer(200, {singular[collection]: item})

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def oncall() -> OnCall:
    return load_oncall()


@pytest.fixture
def pagerduty(oncall: OnCall) -> Iterator[tuple[PagerDutyState, Served]]:
    state = PagerDutyState([u.email for u in oncall.users])
    with https_server(_handler(state)) as served:
        yield state, served


def test_sync_creates_then_updates_in_place(
    oncall: OnCall, pagerduty: tuple[PagerDutyState, Served]
) -> None:
    state, served = pagerduty
    with httpx.Client(verify=served.context) as client:
        rest = PagerDutyRest(client, served.base, TOKEN)
        first = sync(rest, oncall, loops=1)
        second = sync(rest, oncall, loops=1)
    assert len(first.created) == 5
    assert first.updated == []
    assert second.created == []
    assert len(second.updated) == 5
    assert len(state.objects["schedules"]) == 4
    (policy,) = state.objects["escalation_policies"].values()
    assert policy["num_loops"] == 1
    assert [r["escalation_delay_in_minutes"] for r in policy["escalation_rules"]] == [15, 30, 75]
    names = {s["id"]: s["name"] for s in state.objects["schedules"].values()}
    last = [names[t["id"]] for t in policy["escalation_rules"][2]["targets"]]
    assert last == ["Engineering lead", "Head of Ops"]
    primary = next(s for s in state.objects["schedules"].values() if s["name"] == "Primary on-call")
    layer = primary["schedule_layers"][0]
    assert layer["rotation_turn_length_seconds"] == 7 * 86_400
    assert [u["user"]["type"] for u in layer["users"]] == ["user_reference"] * 4
    for method, _, headers, _ in state.requests:
        assert headers["accept"] == ACCEPT, method
        if method in ("POST", "PUT"):
            assert headers["content-type"] == "application/json"


def test_an_unknown_user_stops_the_sync(
    oncall: OnCall, pagerduty: tuple[PagerDutyState, Served]
) -> None:
    state, served = pagerduty
    state.objects["users"].pop("PU0")
    with httpx.Client(verify=served.context) as client, pytest.raises(SyncError, match="ada"):
        sync(PagerDutyRest(client, served.base, TOKEN), oncall, loops=1)
    assert state.objects["schedules"] == {}


def test_a_refused_token_is_a_clear_error(
    oncall: OnCall, pagerduty: tuple[PagerDutyState, Served]
) -> None:
    _, served = pagerduty
    with httpx.Client(verify=served.context) as client, pytest.raises(SyncError, match="401"):
        sync(PagerDutyRest(client, served.base, "wrong"), oncall, loops=1)
