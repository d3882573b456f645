"""``opsdeck oncall sync`` against a stateful local HTTPS fake of PagerDuty's REST API:
schedules and the escalation policy are created, then updated in place (a second sync
creates nothing), with PagerDuty's headers and bodies; unknown users stop the sync.

The fake pages its indexes as PagerDuty does (``offset``/``limit``/``more``, at most
``PAGE`` items an answer) and its ``query`` matches substrings, case-insensitively: an
object on page 2 behind similarly named siblings must still be found and updated. It
refuses query parameters PagerDuty does not know, and can answer 429/5xx first."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from api.incidents.oncall_sync import ACCEPT, SyncError, rest_client, sync
from core.oncall import OnCall, load_oncall
from tests.conftest import opsdeck_env, run_opsdeck
from tests.incidents.fakes import Served, https_server
from tests.local_http import send_json

TOKEN = "u+pd-rest-token"
PAGE = 2  # the fake's largest page, so that four schedules take two pages
LIST_PARAMS = frozenset({"query", "limit", "offset", "total"})
SINGULAR = {"schedules": "schedule", "escalation_policies": "escalation_policy"}


class PagerDutyState:
    def __init__(self, emails: list[str]) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            "users": {f"PU{i}": {"id": f"PU{i}", "email": e} for i, e in enumerate(emails)},
            "schedules": {},
            "escalation_policies": {},
        }
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.failures: list[int] = []  # statuses to answer, in order, before serving
        self.ids = itertools.count(1)

    def add(self, collection: str, name: str) -> str:
        ident = f"P{collection[0].upper()}{next(self.ids)}"
        self.objects[collection][ident] = {"id": ident, "name": name}
        return ident


def _page(state: PagerDutyState, collection: str, query: dict[str, list[str]]) -> dict[str, Any]:
    """One page of an index, as PagerDuty's classic pagination answers it."""
    needle = query.get("query", [""])[0].lower()
    items = [
        o
        for o in state.objects[collection].values()
        if needle in str(o.get("name", "")).lower() or needle in str(o.get("email", "")).lower()
    ]
    offset = int(query.get("offset", ["0"])[0])
    limit = min(int(query.get("limit", ["25"])[0]), PAGE)
    page = items[offset : offset + limit]
    more = offset + len(page) < len(items)
    return {collection: page, "offset": offset, "limit": limit, "more": more, "total": None}


def _handler(state: PagerDutyState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            send_json(self, status, body)

        def _read(self) -> Any:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append((self.command, self.path, headers, body))
            if headers.get("authorization") != f"Token token={TOKEN}":
                self._answer(401, {"error": {"message": "Unauthorized", "code": 2006}})
                return None
            if state.failures:
                status = state.failures.pop(0)
                self._answer(status, {"error": {"message": f"status {status}", "code": 2020}})
                return None
            return body if body is not None else {}

        def do_GET(self) -> None:
            if self._read() is None:
                return
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if unknown := set(query) - LIST_PARAMS:
                self._answer(400, {"error": {"message": f"unknown parameters {sorted(unknown)}"}})
                return
            self._answer(200, _page(state, url.path.strip("/"), query))

        def do_POST(self) -> None:
            body = self._read()
            if body is None:
                return
            collection = self.path.strip("/")
            ident = state.add(collection, "")
            item = {**body[SINGULAR[collection]], "id": ident}
            state.objects[collection][ident] = item
            self._answer(201, {SINGULAR[collection]: item})

        def do_PUT(self) -> None:
            body = self._read()
            if body is None:
                return
            collection, ident = self.path.strip("/").split("/")
            if ident not in state.objects[collection]:
                self._answer(404, {"error": {"message": "Not Found", "code": 2100}})
                return
            item = {**body[SINGULAR[collection]], "id": ident}
            state.objects[collection][ident] = item
            self._answer(200, {SINGULAR[collection]: item})

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


def _sync(served: Served, oncall: OnCall, token: str = TOKEN) -> Any:
    with rest_client(served.base, token, verify=served.context, backoff_seconds=0.01) as client:
        return sync(client, oncall, loops=1)


def _names(state: PagerDutyState, collection: str) -> list[str]:
    return sorted(str(o["name"]) for o in state.objects[collection].values())


def test_sync_creates_then_updates_in_place(
    oncall: OnCall, pagerduty: tuple[PagerDutyState, Served]
) -> None:
    state, served = pagerduty
    first = _sync(served, oncall)
    second = _sync(served, oncall)
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


def test_an_existing_object_on_page_two_is_updated_not_duplicated(
    oncall: OnCall, pagerduty: tuple[PagerDutyState, Served]
) -> None:
    state, served = pagerduty
    policy_name = oncall.escalation_policies[0].name
    # Siblings whose names contain the real ones fill page 1 of each query's answer.
    for prefix in ("Legacy ", "Old "):
        state.add("schedules", f"{prefix}Primary on-call")
        state.add("escalation_policies", f"{prefix}{policy_name}")
    primary = state.add("schedules", "Primary on-call")
    policy = state.add("escalation_policies", policy_name)
    report = _sync(served, oncall)
    assert "schedule Primary on-call" in report.updated
    assert f"escalation_policy {policy_name}" in report.updated
    assert "schedule Primary on-call" not in report.created
    assert _names(state, "schedules").count("Primary on-call") == 1
    assert _names(state, "escalation_policies").count(policy_name) == 1
    # The PUT went to the existing objects' ids, with the on-call file's bodies.
    assert state.objects["schedules"][primary]["schedule_layers"]
    assert state.objects["escalation_policies"][policy]["num_loops"] == 1
    assert "Legacy Primary on-call" in _names(state, "schedules")  # siblings left alone
    paged = [p for m, p, _, _ in state.requests if m == "GET" and "offset=2" in p]
    assert paged, "the sync never asked for page 2"


@pytest.mark.parametrize("status", [429, 503])
def test_a_throttled_or_failing_answer_is_retried(
    oncall: OnCall, pagerduty: tuple[PagerDutyState, Served], status: int
) -> None:
    state, served = pagerduty
    state.failures.append(status)
    report = _sync(served, oncall)
    assert len(report.created) == 5
    first, again = state.requests[0], state.requests[1]
    assert first[:2] == again[:2]  # the same request, sent again after the refusal
    assert len(state.objects["schedules"]) == 4


def test_an_unknown_user_stops_the_sync(
    oncall: OnCall, pagerduty: tuple[PagerDutyState, Served]
) -> None:
    state, served = pagerduty
    state.objects["users"].pop("PU0")
    with pytest.raises(SyncError, match="ada"):
        _sync(served, oncall)
    assert state.objects["schedules"] == {}


def test_a_refused_token_is_a_clear_error(
    oncall: OnCall, pagerduty: tuple[PagerDutyState, Served]
) -> None:
    _, served = pagerduty
    with pytest.raises(SyncError, match="401"):
        _sync(served, oncall, token="wrong")


def test_a_plain_http_url_is_refused() -> None:
    with pytest.raises(SyncError, match="https"):
        rest_client("http://api.pagerduty.example", TOKEN)


def test_the_cli_syncs_with_the_configured_url_and_token(
    pagerduty: tuple[PagerDutyState, Served],
) -> None:
    state, served = pagerduty
    # The local CA as the system's trust, as a private CA would be in production.
    env = opsdeck_env(
        SSL_CERT_FILE=served.ca_file, OPSDECK_INCIDENTS__PAGERDUTY_API_URL=served.base
    )
    refused = run_opsdeck("oncall", "sync", env=env, timeout=60)
    assert refused.returncode == 2
    assert "OPSDECK_INCIDENTS__PAGERDUTY_API_TOKEN" in refused.stderr
    env["OPSDECK_INCIDENTS__PAGERDUTY_API_TOKEN"] = TOKEN
    first = run_opsdeck("oncall", "sync", env=env, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "created schedule Primary on-call" in first.stdout
    second = run_opsdeck("oncall", "sync", env=env, timeout=60)
    assert "updated schedule Primary on-call" in second.stdout
    assert len(state.objects["schedules"]) == 4
